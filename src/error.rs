//! The one error type of the library.

/// Everything the library can fail with. Variants carry the context a caller needs to act:
/// which op or layer, which shapes disagreed, which adapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the requested backends.
    #[error("no GPU adapter found for backend(s) {backends} (on Linux, `apt-get install mesa-vulkan-drivers` gives a software Vulkan adapter)")]
    NoAdapter {
        /// The backends that were searched.
        backends: String,
    },
    /// `DEEPROOTS_BACKEND` or `--backend` named something we do not know.
    #[error("unknown backend '{0}': expected one of vulkan, metal, dx12, gl")]
    UnknownBackend(String),
    /// The adapter refused to create a device.
    #[error("could not create a device on adapter '{adapter}': {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// The driver's reason.
        message: String,
    },
    /// An op was given shapes or parameters it cannot run.
    #[error("{op}: {message}")]
    InvalidOp {
        /// The op (or layer) name.
        op: String,
        /// What was expected against what was found.
        message: String,
    },
    /// A buffer would exceed what the device can bind at once.
    #[error(
        "{label}: needs a buffer of {bytes} bytes, but the device binds at most {limit} bytes"
    )]
    BufferTooLarge {
        /// The layer or value the buffer is for.
        label: String,
        /// The size asked for.
        bytes: u64,
        /// The device's limit.
        limit: u64,
    },
    /// A feature the adapter lacks.
    #[error("the adapter '{adapter}' lacks {feature}")]
    MissingFeature {
        /// Adapter name.
        adapter: String,
        /// What is missing.
        feature: String,
    },
    /// A WGPU validation or internal error, caught by an error scope.
    #[error("GPU error in {label}: {message}")]
    Gpu {
        /// The GPU object or step it came from.
        label: String,
        /// wgpu's description.
        message: String,
    },
    /// The device ran out of memory.
    #[error("GPU out of memory in {label}")]
    OutOfMemory {
        /// The GPU object or step it came from.
        label: String,
    },
    /// A graph that cannot run: names the node and the problem.
    #[error("node '{node}': {message}")]
    Graph {
        /// The node (or graph input/output) at fault.
        node: String,
        /// What was expected against what was found.
        message: String,
    },
    /// A model file that cannot be read: bad container, missing graph, wrong tensor data.
    #[error("model file: {0}")]
    ModelFile(String),
    /// An image that cannot be read or does not fit the model.
    #[error("image {path}: {message}")]
    Image {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The device was lost (driver reset, removal); create a new engine.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an [`Error::Graph`].
pub(crate) fn graph_err(node: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Graph {
        node: node.into(),
        message: message.into(),
    }
}

/// Shorthand for an [`Error::InvalidOp`].
pub(crate) fn invalid(op: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidOp {
        op: op.into(),
        message: message.into(),
    }
}
