"""Export a trained NIN28 checkpoint as a deeproots model file (docs/FORMAT.md, version 1).

    /usr/bin/python3 python/export.py python/checkpoints/nin28-root-8.pt [--f16] [--out PATH]

Writes models/<name>.safetensors (F32; with --f16 models/<name>.f16.safetensors, weights as F16),
models/<name>.reference.safetensors (`image` = the first 16 test images normalised, [16,1,28,28]
F32; `logits` = PyTorch's eval-mode output on them, [16,10] F32) and updates models/manifest.json.
The safetensors files are written by hand so no pip package is needed; --check reads a written
file back and reruns its graph with torch ops to compare with the reference logits.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nin28  # noqa: E402
import train  # noqa: E402  (data loading, normalisation, evaluation)

MODELS = os.path.join(train.ROOT, "models")
DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: np.ndarray (f32/f16)}. Layout: u64 LE header length, JSON header (padded
    with spaces to a multiple of 8 so the data is aligned), then each tensor's raw LE bytes."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = metadata  # safetensors metadata: str -> str only
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """(tensors {name: np.ndarray}, metadata) -- used by --check."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    rev = {v: k for k, v in DTYPES.items()}
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = rev[h["dtype"]].newbyteorder("<")
        out[name] = np.frombuffer(buf[8 + n + b:8 + n + e], dt).reshape(h["shape"])
    return out, meta


def graph(name, bn_eps):
    """The deeproots graph: conv2d (+ batch_norm with fused relu) per conv, pools, flatten."""
    nodes, prev = [], "image"
    for n, ci, co, k, g, _ in nin28.layer_specs(name):
        p = k // 2
        nodes.append({"name": n, "op": "conv2d", "inputs": [prev],
                      "attrs": {"kernel": [k, k], "stride": [1, 1], "padding": [p, p, p, p],
                                "groups": g, "activation": "none"},
                      "weights": {"weight": f"{n}.weight", "bias": f"{n}.bias"}})
        prev = n
        if n != "conv3c":
            bn = "bn" + n[4:]
            nodes.append({"name": bn, "op": "batch_norm", "inputs": [prev],
                          "attrs": {"eps": bn_eps[bn], "activation": "relu"},
                          "weights": {"gamma": f"{bn}.weight", "beta": f"{bn}.bias",
                                      "mean": f"{bn}.running_mean", "var": f"{bn}.running_var"}})
            prev = bn
        if n in ("conv1c", "conv2c"):
            pool = "pool" + n[4]
            attrs = {"kernel": [3, 3], "stride": [2, 2], "padding": [0, 0, 0, 0], "ceil_mode": True}
            if pool == "pool2":
                attrs["count_include_pad"] = True
            nodes.append({"name": pool, "op": "max_pool" if pool == "pool1" else "avg_pool",
                          "inputs": [prev], "attrs": attrs})
            prev = pool
    nodes.append({"name": "pool3", "op": "global_avg_pool", "inputs": [prev]})
    nodes.append({"name": "logits", "op": "flatten", "inputs": ["pool3"]})
    return {"format": "deeproots-graph", "version": 1, "name": name,
            "inputs": [{"name": "image", "shape": [1, 28, 28],
                        # the training normalisation on the 0..255 pixel scale
                        "preprocess": {"color": "gray", "mean": [round(train.MEAN * 255, 4)],
                                       "std": [round(train.STD * 255, 4)]}}],
            "outputs": ["logits"], "labels": nin28.LABELS, "nodes": nodes}


def run_graph(g, w):
    """Reruns a graph with torch functional ops on the tensors read from the file (--check)."""
    t = {k: torch.from_numpy(v.astype(np.float32)) for k, v in w.items()}
    def act(x, a):
        return torch.relu(x) if a == "relu" else x

    def value(x):
        vals = {g["inputs"][0]["name"]: x}
        for nd in g["nodes"]:  # written in dependency order by graph()
            a, i = nd.get("attrs", {}), vals[nd["inputs"][0]]
            ws = {k: t[v] for k, v in nd.get("weights", {}).items()}
            if nd["op"] == "conv2d":
                y = act(F.conv2d(i, ws["weight"], ws.get("bias"), a["stride"], a["padding"][:2],
                                 groups=a["groups"]), a["activation"])
            elif nd["op"] == "batch_norm":
                y = act(F.batch_norm(i, ws["mean"], ws["var"], ws["gamma"], ws["beta"],
                                     eps=a["eps"]), a["activation"])
            elif nd["op"] == "max_pool":
                y = F.max_pool2d(i, a["kernel"], a["stride"], ceil_mode=a["ceil_mode"])
            elif nd["op"] == "avg_pool":
                y = F.avg_pool2d(i, a["kernel"], a["stride"], ceil_mode=a["ceil_mode"],
                                 count_include_pad=a["count_include_pad"])
            elif nd["op"] == "global_avg_pool":
                y = i.mean((2, 3), keepdim=True)
            elif nd["op"] == "flatten":
                y = i.flatten(1)
            vals[nd["name"]] = y
        return vals[g["outputs"][0]]
    return value


def check(model_path, ref_path):
    w, meta = read_safetensors(model_path)
    g = json.loads(meta["deeproots.graph"])
    used = {v for nd in g["nodes"] for v in nd.get("weights", {}).values()}
    assert used == set(w), f"unused or missing tensors: {used ^ set(w)}"
    ref, _ = read_safetensors(ref_path)
    got = run_graph(g, w)(torch.from_numpy(ref["image"].copy())).numpy()
    err = np.linalg.norm(got - ref["logits"]) / np.linalg.norm(ref["logits"])
    print(f"check {os.path.basename(model_path)}: rel L2 error {err:.2e} vs reference logits")
    return err


def update_manifest(entry):
    path = os.path.join(MODELS, "manifest.json")
    items = json.load(open(path)) if os.path.exists(path) else []
    items = [e for e in items if e["name"] != entry["name"]] + [entry]
    with open(path, "w") as f:
        json.dump(items, f, indent=2)
        f.write("\n")


def export(ckpt, f16=False, out=None, do_check=True):
    st = torch.load(ckpt)
    name = st["name"]
    model = nin28.build(name)
    model.load_state_dict(st["model"])
    model.eval()
    os.makedirs(MODELS, exist_ok=True)
    (xte, yte) = train.load_idx("t10k")
    top1 = st.get("top1")
    if top1 is None:  # an unfinished checkpoint: measure it now
        top1 = train.evaluate(model, xte, yte)

    dt = np.float16 if f16 else np.float32
    # num_batches_tracked is training bookkeeping, and every tensor in the file must be used.
    tensors = {k: v.detach().contiguous().numpy().astype(dt)
               for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    eps = {n: m.eps for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    g = graph(name, eps)
    out = out or os.path.join(MODELS, f"{name}{'.f16' if f16 else ''}.safetensors")
    write_safetensors(out, tensors, {"deeproots.graph": json.dumps(g)})

    ref_path = os.path.join(MODELS, f"{name}.reference.safetensors")
    x = train.normalise(xte[:16]).contiguous()
    with torch.no_grad():
        logits = model(x)
    write_safetensors(ref_path, {"image": x.numpy(), "logits": logits.numpy()})

    macs, params = nin28.cost(name)
    entry = {"name": name, "file": os.path.basename(out), "reference": os.path.basename(ref_path),
             "dtype": "F16" if f16 else "F32", "multiply_adds": macs, "params": params,
             "pytorch_top1": top1, "epochs": st["epoch"], "seed": st["seed"],
             "train_seconds": round(st["elapsed"], 1)}
    if not f16:  # the manifest lists the F32 file of each model
        update_manifest(entry)
    print(f"exported {out} ({os.path.getsize(out) / 1e6:.2f} MB), {ref_path}, top-1 {top1:.4f}")
    if do_check:
        err = check(out, ref_path)
        assert err < (1e-2 if f16 else 1e-4), "exported graph does not reproduce PyTorch"
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="python/checkpoints/<name>.pt")
    p.add_argument("--f16", action="store_true", help="store the weights as F16")
    p.add_argument("--out", help="model file path (default models/<name>[.f16].safetensors)")
    a = p.parse_args()
    torch.set_num_threads(2)
    export(a.checkpoint, a.f16, a.out)
