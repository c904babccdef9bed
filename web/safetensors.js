// Reads the tensors of a safetensors file (F32 or F16) into Float32Arrays. Used by the demo page
// and by the browser test under Node; no dependencies.
//
//   readSafetensors(bytes: Uint8Array) -> { name: { shape: number[], data: Float32Array } }

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The JSON header (tensor entries and `__metadata__`) and its length in bytes. */
export function readHeader(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8) throw new Error("safetensors: shorter than its 8-byte header length");
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new Error("safetensors: header longer than the file");
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), length: n };
}

export function readSafetensors(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { header, length: n } = readHeader(bytes);
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    const base = 8 + n + begin;
    if (8 + n + end > bytes.byteLength) throw new Error(`safetensors: '${name}' runs past the end`);
    const data = new Float32Array(count);
    if (t.dtype === "F32") {
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(base + 4 * i, true);
    } else if (t.dtype === "F16") {
      for (let i = 0; i < count; i++) data[i] = f16ToF32(view.getUint16(base + 2 * i, true));
    } else {
      throw new Error(`safetensors: '${name}' is ${t.dtype}; only F32 and F16 are read`);
    }
    out[name] = { shape: t.shape, data };
  }
  return out;
}

/** Relative L2 distance |a - b| / |b|. */
export function relL2(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
