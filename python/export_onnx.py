"""Convert a deeproots model file (docs/FORMAT.md, version 1) into an ONNX model.

    python python/export_onnx.py MODEL.safetensors OUT.onnx [--keep-batch-norm] [--opset 17]
        [--check DEEPROOTS_BINARY [--batch 2] [--backend gl]]

Needs the `onnx` package (and `onnxruntime` for --check), e.g. in a venv:
    python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx onnxruntime
The model file is read without the safetensors package.

Every op of the format is mapped: conv2d (groups, dilation, per-side padding, bias, activation),
batch_norm, max_pool / avg_pool (ceil mode, count_include_pad; written without ONNX's ceil_mode), global_avg_pool, add, concat,
linear, softmax, flatten. The batch dimension is symbolic ("N"). F16 weights become F32.

A batch_norm is folded into the conv2d before it under the rule the engine uses at load (the conv
has activation `none` and nothing else reads it), so both runtimes execute the same convolutions;
--keep-batch-norm writes BatchNormalization nodes instead.

--check writes a random input batch, runs `DEEPROOTS_BINARY run MODEL --input --output` and
onnxruntime on the ONNX file, and fails unless every output agrees to rel L2 <= 1e-4.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}
REL_L2_TOLERANCE = 1e-4


def read_safetensors(path):
    """(tensors {name: np.ndarray}, metadata {str: str})."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, h in header.items():
        if h["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor {name}: dtype {h['dtype']} is not F32 or F16")
        b, e = h["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + b:8 + n + e], DTYPES[h["dtype"]]).reshape(h["shape"])
    return out, meta


def write_safetensors(path, tensors):
    """tensors: {name: f32 np.ndarray}; header padded to 8 bytes like python/export.py."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def load_model(path):
    """(graph dict, tensors as f32) from a deeproots model file."""
    tensors, meta = read_safetensors(path)
    if "deeproots.graph" not in meta:
        raise SystemExit(f"{path}: no 'deeproots.graph' key in the safetensors metadata")
    graph = json.loads(meta["deeproots.graph"])
    if graph.get("format") != "deeproots-graph" or graph.get("version") != 1:
        raise SystemExit(f"{path}: format {graph.get('format')!r} version {graph.get('version')!r}, "
                         "expected deeproots-graph version 1")
    return graph, {k: v.astype(np.float32) for k, v in tensors.items()}


def topological(nodes, inputs):
    """Nodes in an order where each comes after its inputs (the format allows any order)."""
    by_name = {n["name"]: n for n in nodes}
    done, order = set(inputs), []

    def visit(name, stack):
        if name in done:
            return
        if name not in by_name:
            raise SystemExit(f"value {name!r} is read but neither a graph input nor a node")
        if name in stack:
            raise SystemExit(f"the graph has a cycle through {name!r}")
        stack.add(name)
        for i in by_name[name]["inputs"]:
            visit(i, stack)
        stack.discard(name)
        done.add(name)
        order.append(by_name[name])

    for n in nodes:
        visit(n["name"], set())
    return order


def fold_batch_norms(order, weights, outputs):
    """Fold each batch_norm into the conv2d before it, as the engine does at load: the conv has
    activation `none`, nothing else reads it and it is not a graph output. Returns the new order
    and weights (fresh arrays; the inputs are left alone)."""
    readers = {}
    for n in order:
        for i in n["inputs"]:
            readers[i] = readers.get(i, 0) + 1
    by_name = {n["name"]: n for n in order}
    weights = dict(weights)
    folded_into = {}  # bn name -> conv node (renamed to the bn's name)
    for n in order:
        if n["op"] != "batch_norm":
            continue
        src = by_name.get(n["inputs"][0])
        if (src is None or src["op"] != "conv2d" or src.get("attrs", {}).get("activation", "none") != "none"
                or readers.get(src["name"], 0) != 1 or src["name"] in outputs):
            continue
        a, w = n.get("attrs", {}), n["weights"]
        scale = weights[w["gamma"]] / np.sqrt(weights[w["var"]] + np.float32(a.get("eps", 1e-5)))
        cw = src["weights"]
        conv_w = weights[cw["weight"]] * scale[:, None, None, None]
        bias = weights[cw["bias"]] if "bias" in cw else np.zeros_like(scale)
        conv_b = (bias - weights[w["mean"]]) * scale + weights[w["beta"]]
        wname, bname = f"{n['name']}.folded.weight", f"{n['name']}.folded.bias"
        weights[wname], weights[bname] = conv_w.astype(np.float32), conv_b.astype(np.float32)
        folded_into[n["name"]] = {
            "name": n["name"], "op": "conv2d", "inputs": src["inputs"],
            "attrs": {**src.get("attrs", {}), "activation": a.get("activation", "none")},
            "weights": {"weight": wname, "bias": bname},
        }
    convs_gone = {by_name[b]["inputs"][0] for b in folded_into}
    new_order = [folded_into.get(n["name"], n) for n in order if n["name"] not in convs_gone]
    return new_order, weights


def pool_out_len(size, k, s, p0, p1, ceil):
    """PyTorch's rule (src/ops/pool.rs): in ceil mode the last window must start inside the
    input or the leading padding."""
    span = size + p0 + p1 - k
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p0:
        out -= 1
    return out


class Exporter:
    def __init__(self, graph, weights, opset):
        from onnx import helper, numpy_helper, TensorProto
        self.helper, self.numpy_helper, self.TensorProto = helper, numpy_helper, TensorProto
        self.graph, self.weights, self.opset = graph, weights, opset
        self.nodes, self.initializers, self.used = [], [], set()
        self.shapes = {}  # value name -> [C, H, W] or [F] (no batch)

    def init(self, name, array):
        if name not in self.used:
            self.used.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, key):
        if key not in self.weights:
            raise SystemExit(f"weight {key!r} is named by the graph but not in the file")
        return self.init(key, self.weights[key])

    def node(self, op, inputs, output, name, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def activation(self, act, x, out, name):
        """Append the activation (if any) to value x, ending in value `out`."""
        if act in (None, "none"):
            if x != out:
                self.node("Identity", [x], out, name)
            return out
        if act == "relu":
            return self.node("Relu", [x], out, name + "/relu")
        if act == "relu6":
            lo = self.init("relu6.min", np.array(0.0, np.float32))
            hi = self.init("relu6.max", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi], out, name + "/relu6")
        raise SystemExit(f"node {name}: activation {act!r} is not none, relu or relu6")

    def conv2d(self, n, a):
        name, w = n["name"], n["weights"]
        wt = self.weights[w["weight"]]
        c_in, h, wd = self.shapes[n["inputs"][0]]
        kh, kw = a["kernel"]
        sh, sw = a.get("stride", [1, 1])
        pt, pl, pb, pr = a.get("padding", [0, 0, 0, 0])
        dh, dw = a.get("dilation", [1, 1])
        g = a.get("groups", 1)
        if wt.shape[1] * g != c_in or tuple(wt.shape[2:]) != (kh, kw):
            raise SystemExit(f"node {name}: weight {list(wt.shape)} does not fit C_in {c_in}, "
                             f"groups {g}, kernel {[kh, kw]}")
        ins = [n["inputs"][0], self.weight(w["weight"])]
        if "bias" in w:
            ins.append(self.weight(w["bias"]))
        act = a.get("activation", "none")
        y = name if act == "none" else name + "/conv"
        self.node("Conv", ins, y, name, kernel_shape=[kh, kw], strides=[sh, sw], pads=[pt, pl, pb, pr],
                  dilations=[dh, dw], group=g)
        self.activation(act, y, name, name)
        ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
        wo = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
        self.shapes[name] = [wt.shape[0], ho, wo]

    def pool(self, n, a, kind):
        name, x = n["name"], n["inputs"][0]
        c, h, w = self.shapes[x]
        kh, kw = a["kernel"]
        sh, sw = a.get("stride", a["kernel"])
        pt, pl, pb, pr = a.get("padding", [0, 0, 0, 0])
        ceil = bool(a.get("ceil_mode", False))
        ho = pool_out_len(h, kh, sh, pt, pb, ceil)
        wo = pool_out_len(w, kw, sw, pl, pr, ceil)
        if kind == "avg" and a.get("count_include_pad", True) and any((pt, pl, pb, pr)):
            # PyTorch divides by the window clipped to the padded input. Pad with zeros first:
            # the divisor is then the count of elements inside the (now real) input, which is
            # ONNX's count_include_pad=0.
            padded = name + "/pad"
            p = self.init(f"{name}.pads", np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64))
            x = self.node("Pad", [x, p], padded, padded, mode="constant")
            h, w, (pt, pl, pb, pr) = h + pt + pb, w + pl + pr, (0, 0, 0, 0)
        # Ceil mode as extra trailing padding in floor mode: the windows are the same, extra
        # padding is never counted by MaxPool nor by AveragePool with count_include_pad=0 (PyTorch
        # does not count it either), and it also avoids ONNX's ceil rule, which keeps a last window
        # that starts in the padding, and runtimes without ceil mode (ORT-web's WebGPU MaxPool).
        pb += max(0, (ho - 1) * sh + kh - (h + pt + pb))
        pr += max(0, (wo - 1) * sw + kw - (w + pl + pr))
        attrs = dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[pt, pl, pb, pr])
        if kind == "avg":
            self.node("AveragePool", [x], name, name, count_include_pad=0, **attrs)
        else:
            self.node("MaxPool", [x], name, name, **attrs)
        assert ((h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1) == (ho, wo)
        self.shapes[name] = [c, ho, wo]

    def export(self):
        g, helper, TP = self.graph, self.helper, self.TensorProto
        graph_inputs = []
        for i in g["inputs"]:
            self.shapes[i["name"]] = list(i["shape"])
            graph_inputs.append(helper.make_tensor_value_info(i["name"], TP.FLOAT, ["N", *i["shape"]]))
        order = topological(g["nodes"], [i["name"] for i in g["inputs"]])
        for n in order:
            op, a, name, ins = n["op"], n.get("attrs", {}) or {}, n["name"], n["inputs"]
            if op == "conv2d":
                self.conv2d(n, a)
            elif op == "batch_norm":
                w = n["weights"]
                act = a.get("activation", "none")
                y = name if act == "none" else name + "/bn"
                self.node("BatchNormalization", [ins[0]] + [self.weight(w[k]) for k in
                          ("gamma", "beta", "mean", "var")], y, name, epsilon=float(a.get("eps", 1e-5)))
                self.activation(act, y, name, name)
                self.shapes[name] = self.shapes[ins[0]]
            elif op in ("max_pool", "avg_pool"):
                self.pool(n, a, op[:3])
            elif op == "global_avg_pool":
                self.node("GlobalAveragePool", ins, name, name)
                self.shapes[name] = [self.shapes[ins[0]][0], 1, 1]
            elif op == "flatten":
                self.node("Flatten", ins, name, name, axis=1)
                self.shapes[name] = [int(np.prod(self.shapes[ins[0]]))]
            elif op == "linear":
                w = n["weights"]
                gemm_ins = [ins[0], self.weight(w["weight"])]
                if "bias" in w:
                    gemm_ins.append(self.weight(w["bias"]))
                act = a.get("activation", "none")
                y = name if act == "none" else name + "/gemm"
                self.node("Gemm", gemm_ins, y, name, transB=1)
                self.activation(act, y, name, name)
                self.shapes[name] = [self.weights[w["weight"]].shape[0]]
            elif op == "softmax":
                self.node("Softmax", ins, name, name, axis=1)
                self.shapes[name] = self.shapes[ins[0]]
            elif op == "add":
                act = a.get("activation", "none")
                y = name if act == "none" else name + "/add"
                self.node("Add", ins, y, name)
                self.activation(act, y, name, name)
                self.shapes[name] = self.shapes[ins[0]]
            elif op == "concat":
                self.node("Concat", ins, name, name, axis=1)
                s = self.shapes[ins[0]]
                self.shapes[name] = [sum(self.shapes[i][0] for i in ins), *s[1:]]
            else:
                raise SystemExit(f"node {name}: op {op!r} has no ONNX mapping")
        outputs = [helper.make_tensor_value_info(o, TP.FLOAT, ["N", *self.shapes[o]]) for o in g["outputs"]]
        onnx_graph = helper.make_graph(self.nodes, g.get("name", "deeproots"), graph_inputs, outputs,
                                       self.initializers)
        model = helper.make_model(onnx_graph, producer_name="deeproots python/export_onnx.py",
                                  opset_imports=[helper.make_opsetid("", self.opset)])
        # ORT 1.30 (web) reads IR version <= 10; pin it so a newer onnx package does not write 11+.
        model.ir_version = min(model.ir_version, 10)
        return model


def check(model_path, onnx_path, graph, binary, batch, backend):
    """Run both engines on one random batch; return {output: rel L2}."""
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    feeds = {i["name"]: rng.standard_normal([batch, *i["shape"]]).astype(np.float32) for i in graph["inputs"]}
    with tempfile.TemporaryDirectory() as d:
        x, y = os.path.join(d, "x.safetensors"), os.path.join(d, "y.safetensors")
        write_safetensors(x, feeds)
        cmd = [binary, "run", model_path, "--input", x, "--output", y]
        if backend:
            cmd += ["--backend", backend]
        subprocess.run(cmd, check=True)
        ours, _ = read_safetensors(y)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    errs = {}
    for name in graph["outputs"]:
        a, b = ours[name].astype(np.float64), theirs[name].astype(np.float64)
        if a.shape != b.shape:
            raise SystemExit(f"output {name}: deeproots shape {list(a.shape)}, onnxruntime {list(b.shape)}")
        errs[name] = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="deeproots model file (.safetensors)")
    ap.add_argument("out", help="where to write the .onnx file")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--keep-batch-norm", action="store_true", help="write BatchNormalization nodes")
    ap.add_argument("--check", metavar="DEEPROOTS", help="deeproots binary to compare against")
    ap.add_argument("--batch", type=int, default=2, help="batch size of the --check input")
    ap.add_argument("--backend", help="--backend passed to deeproots run in --check")
    args = ap.parse_args()

    import onnx
    graph, weights = load_model(args.model)
    order = topological(graph["nodes"], [i["name"] for i in graph["inputs"]])
    if not args.keep_batch_norm:
        order, weights = fold_batch_norms(order, weights, set(graph["outputs"]))
    model = Exporter({**graph, "nodes": order}, weights, args.opset).export()
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    onnx.save(model, args.out)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{args.out}: {len(model.graph.node)} nodes ({', '.join(ops)}), opset {args.opset}")
    if args.check:
        errs = check(args.model, args.out, graph, args.check, args.batch, args.backend)
        for name, e in errs.items():
            print(f"  {name}: rel L2 {e:.3e} against deeproots run (batch {args.batch})")
        if any(not e <= REL_L2_TOLERANCE for e in errs.values()):
            sys.exit(f"rel L2 above {REL_L2_TOLERANCE}")


if __name__ == "__main__":
    main()
