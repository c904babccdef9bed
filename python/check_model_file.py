"""Read a deeproots model file back and run its graph with a small PyTorch interpreter, without the
Rust engine; optionally compare with reference outputs.

    /usr/bin/python3 python/check_model_file.py data/efficientnet-lite0.safetensors \
        --reference data/efficientnet-lite0.reference.safetensors [--tol 1e-5] [--fold] [--double]

Checks the file itself (safetensors layout: u64 LE header length, JSON header, contiguous data;
F32/F16 tensors only; graph JSON under __metadata__ "deeproots.graph", format "deeproots-graph",
version 1; unique node names; every input defined; acyclic; only documented ops and attributes;
weight shapes; every tensor used by a node; outputs exist), then, with --reference, feeds the
reference file's tensor named like the graph input (e.g. `image`, [N,C,H,W]) through the graph and
compares each graph output with the reference tensor of the same name (e.g. `logits`): relative L2
error ||got - want|| / ||want|| must be <= --tol, and the top-1 agreement is printed.

--fold also runs the graph after folding each batch_norm into the conv2d before it (when that conv
has activation none, nothing else reads it and it is not an output), as the engine does at load,
and checks that result too. --double computes in float64 instead of float32.

Op semantics follow docs/FORMAT.md: conv2d padding is [top, left, bottom, right] (applied with an
explicit F.pad so asymmetric padding works), activations none/relu/relu6, batch_norm uses running
statistics, pools take kernel/stride/padding/ceil_mode (avg_pool count_include_pad), concat is
over channels, softmax over channels, flatten keeps the batch dimension.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2")}
ATTRS = {
    "conv2d": {"kernel", "stride", "padding", "dilation", "groups", "activation"},
    "batch_norm": {"eps", "activation"},
    "max_pool": {"kernel", "stride", "padding", "ceil_mode"},
    "avg_pool": {"kernel", "stride", "padding", "ceil_mode", "count_include_pad"},
    "global_avg_pool": set(),
    "add": {"activation"},
    "concat": set(),
    "linear": {"activation"},
    "softmax": set(),
    "flatten": set(),
}
WEIGHTS = {  # role -> required
    "conv2d": {"weight": True, "bias": False},
    "batch_norm": {"gamma": True, "beta": True, "mean": True, "var": True},
    "linear": {"weight": True, "bias": False},
}
N_INPUTS = {"add": (2, 2), "concat": (2, 10 ** 9)}


class FileError(Exception):
    pass


def read_safetensors(path, allowed=DTYPES):
    """Returns ({name: np.ndarray}, metadata dict), validating the layout."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise FileError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise FileError(f"header length {n} runs past the end of the file")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(buf)[8 + n:]
    spans, out = [], {}
    for name, h in header.items():
        if h["dtype"] not in allowed:
            raise FileError(f"tensor '{name}': dtype {h['dtype']} (only {sorted(allowed)})")
        dt = allowed[h["dtype"]]
        b, e = h["data_offsets"]
        count = int(np.prod(h["shape"], dtype=np.int64))
        if e - b != count * dt.itemsize or e > len(data) or b < 0:
            raise FileError(f"tensor '{name}': offsets {b}..{e} do not fit shape {h['shape']}")
        spans.append((b, e, name))
        out[name] = np.frombuffer(data[b:e], dt).reshape(h["shape"])
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise FileError(f"tensor '{name}' starts at {b}, expected {pos} (gap or overlap)")
        pos = e
    if pos != len(data):
        raise FileError(f"{len(data) - pos} trailing bytes after the tensor data")
    return out, meta


def load_model(path):
    tensors, meta = read_safetensors(path)
    if "deeproots.graph" not in meta:
        raise FileError("no 'deeproots.graph' key in the header's __metadata__")
    g = json.loads(meta["deeproots.graph"])
    if g.get("format") != "deeproots-graph" or g.get("version") != 1:
        raise FileError(f"format {g.get('format')!r} version {g.get('version')!r}: expected deeproots-graph 1")
    return g, tensors


def validate(g, tensors):
    """Static checks; returns the nodes in a dependency order."""
    inputs = {i["name"]: i for i in g["inputs"]}
    nodes = {}
    for nd in g["nodes"]:
        if nd["name"] in nodes or nd["name"] in inputs:
            raise FileError(f"duplicate value name '{nd['name']}'")
        nodes[nd["name"]] = nd
    used = set()
    for nd in g["nodes"]:
        op, name = nd["op"], nd["name"]
        if op not in ATTRS:
            raise FileError(f"{name}: unknown op '{op}'")
        extra = set(nd.get("attrs", {})) - ATTRS[op]
        if extra:
            raise FileError(f"{name}: unknown attributes {sorted(extra)}")
        lo, hi = N_INPUTS.get(op, (1, 1))
        if not lo <= len(nd["inputs"]) <= hi:
            raise FileError(f"{name}: {len(nd['inputs'])} inputs")
        for i in nd["inputs"]:
            if i not in nodes and i not in inputs:
                raise FileError(f"{name}: input '{i}' is not defined")
        roles = WEIGHTS.get(op, {})
        ws = nd.get("weights", {})
        for r, req in roles.items():
            if req and r not in ws:
                raise FileError(f"{name}: missing weight '{r}'")
        for r, t in ws.items():
            if r not in roles:
                raise FileError(f"{name}: unknown weight role '{r}'")
            if t not in tensors:
                raise FileError(f"{name}: tensor '{t}' is not in the file")
            used.add(t)
        a = nd.get("attrs", {})
        if a.get("activation", "none") not in ("none", "relu", "relu6"):
            raise FileError(f"{name}: activation {a['activation']!r}")
        if op == "conv2d":
            k, gr, w = a["kernel"], a.get("groups", 1), tensors[ws["weight"]]
            if w.ndim != 4 or list(w.shape[2:]) != list(k) or w.shape[0] % gr:
                raise FileError(f"{name}: weight shape {list(w.shape)} vs kernel {k} groups {gr}")
            if "bias" in ws and list(tensors[ws["bias"]].shape) != [w.shape[0]]:
                raise FileError(f"{name}: bias shape")
        if op == "batch_norm":
            shapes = {tuple(tensors[t].shape) for t in ws.values()}
            if len(shapes) != 1 or len(next(iter(shapes))) != 1:
                raise FileError(f"{name}: gamma/beta/mean/var shapes {shapes}")
        if op == "linear":
            w = tensors[ws["weight"]]
            if w.ndim != 2 or ("bias" in ws and list(tensors[ws["bias"]].shape) != [w.shape[0]]):
                raise FileError(f"{name}: weight/bias shapes")
    unused = sorted(set(tensors) - used)
    if unused:
        raise FileError(f"tensors used by no node: {unused[:8]}")
    for o in g["outputs"]:
        if o not in nodes and o not in inputs:
            raise FileError(f"output '{o}' is not defined")
    # topological order (Kahn), refusing cycles
    order, state = [], {}

    def visit(n):
        if n in inputs:
            return
        if state.get(n) == 1:
            raise FileError(f"cycle through '{n}'")
        if state.get(n) == 2:
            return
        state[n] = 1
        for i in nodes[n]["inputs"]:
            visit(i)
        state[n] = 2
        order.append(nodes[n])

    sys.setrecursionlimit(max(10000, 4 * len(nodes)))
    for n in nodes:
        visit(n)
    return order


def act(x, a):
    return {"none": lambda v: v, "relu": torch.relu, "relu6": lambda v: torch.clamp(v, 0, 6)}[a](x)


def fold_batch_norms(order, w, outputs):
    """Folds batch_norm into the conv2d before it, as the engine's loader does."""
    readers = {}
    for nd in order:
        for i in nd["inputs"]:
            readers[i] = readers.get(i, 0) + 1
    byname = {nd["name"]: nd for nd in order}
    w, out, folded = dict(w), [], {}
    for nd in order:
        if nd["op"] == "batch_norm":
            src = byname.get(nd["inputs"][0])
            if (src is not None and src["op"] == "conv2d"
                    and src["attrs"].get("activation", "none") == "none"
                    and readers.get(src["name"], 0) == 1 and src["name"] not in outputs):
                ws = nd["weights"]
                scale = w[ws["gamma"]] / torch.sqrt(w[ws["var"]] + nd["attrs"].get("eps", 1e-5))
                cw = w[src["weights"]["weight"]] * scale[:, None, None, None]
                cb = w[src["weights"]["bias"]] if "bias" in src["weights"] else torch.zeros_like(scale)
                cb = (cb - w[ws["mean"]]) * scale + w[ws["beta"]]
                key = src["name"] + "#folded"
                w[key + ".weight"], w[key + ".bias"] = cw, cb
                new = {"name": nd["name"], "op": "conv2d", "inputs": src["inputs"],
                       "attrs": dict(src["attrs"], activation=nd["attrs"].get("activation", "none")),
                       "weights": {"weight": key + ".weight", "bias": key + ".bias"}}
                folded[src["name"]] = new
                continue
        out.append(nd)
    # put each folded conv where its batch_norm's conv was (inputs already computed there)
    res = []
    for nd in out:
        res.append(folded.get(nd["name"], nd))
    return res, w, len(folded)


def pool_pad(x, pad, value):
    t, l, b, r = pad
    return F.pad(x, [l, r, t, b], value=value) if any(pad) else x


def run(order, w, feeds):
    vals = dict(feeds)
    for nd in order:
        a, ws = nd.get("attrs", {}), {k: w[v] for k, v in nd.get("weights", {}).items()}
        x = vals[nd["inputs"][0]]
        op = nd["op"]
        if op == "conv2d":
            t, l, b, r = a.get("padding", [0, 0, 0, 0])
            y = F.conv2d(F.pad(x, [l, r, t, b]), ws["weight"], ws.get("bias"), a.get("stride", [1, 1]),
                         0, a.get("dilation", [1, 1]), a.get("groups", 1))
        elif op == "batch_norm":
            y = F.batch_norm(x, ws["mean"], ws["var"], ws["gamma"], ws["beta"], False, 0.0,
                             a.get("eps", 1e-5))
        elif op == "max_pool":
            k = a["kernel"]
            y = F.max_pool2d(pool_pad(x, a.get("padding", [0] * 4), float("-inf")), k,
                             a.get("stride", k), ceil_mode=a.get("ceil_mode", False))
        elif op == "avg_pool":
            k, pad = a["kernel"], a.get("padding", [0] * 4)
            if a.get("count_include_pad", True) or not any(pad):
                y = F.avg_pool2d(pool_pad(x, pad, 0.0), k, a.get("stride", k),
                                 ceil_mode=a.get("ceil_mode", False))
            else:  # average over the real pixels only
                ones = torch.ones_like(x[:, :1])
                s = F.avg_pool2d(pool_pad(x, pad, 0.0), k, a.get("stride", k), ceil_mode=a.get("ceil_mode", False))
                c = F.avg_pool2d(pool_pad(ones, pad, 0.0), k, a.get("stride", k), ceil_mode=a.get("ceil_mode", False))
                y = s / c
        elif op == "global_avg_pool":
            y = x.mean(dim=(2, 3), keepdim=True)
        elif op == "add":
            y = x + vals[nd["inputs"][1]]
        elif op == "concat":
            y = torch.cat([vals[i] for i in nd["inputs"]], dim=1)
        elif op == "linear":
            y = F.linear(x.flatten(1), ws["weight"], ws.get("bias"))
        elif op == "softmax":
            y = torch.softmax(x, dim=1)
        elif op == "flatten":
            y = x.flatten(1)
        else:
            raise FileError(f"{nd['name']}: unknown op {op}")
        vals[nd["name"]] = act(y, a.get("activation", "none"))
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="deeproots model file (.safetensors)")
    ap.add_argument("--reference", help="safetensors with the graph input and expected outputs")
    ap.add_argument("--tol", type=float, default=1e-5, help="max relative L2 error (default 1e-5)")
    ap.add_argument("--fold", action="store_true", help="also check with batch norms folded")
    ap.add_argument("--double", action="store_true", help="compute in float64")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    g, tensors = load_model(args.model)
    order = validate(g, tensors)
    ops = {}
    for nd in order:
        ops[nd["op"]] = ops.get(nd["op"], 0) + 1
    dtypes = sorted({str(t.dtype) for t in tensors.values()})
    print(f"{args.model}: graph '{g.get('name', '')}' v{g['version']}, {len(order)} nodes {ops}, "
          f"{len(tensors)} tensors ({', '.join(dtypes)}), {sum(t.size for t in tensors.values())} "
          f"weights, {len(g.get('labels', []))} labels; inputs "
          + ", ".join(f"{i['name']}{i['shape']}" for i in g["inputs"]) + f"; outputs {g['outputs']}: OK")
    if not args.reference:
        return

    dt = torch.float64 if args.double else torch.float32
    w = {k: torch.from_numpy(v.astype(np.float32)).to(dt) for k, v in tensors.items()}
    ref, _ = read_safetensors(args.reference)
    feeds = {}
    for i in g["inputs"]:
        if i["name"] not in ref:
            sys.exit(f"reference has no tensor '{i['name']}' for the graph input")
        x = ref[i["name"]]
        if list(x.shape[1:]) != list(i["shape"]):
            sys.exit(f"reference '{i['name']}' shape {list(x.shape)} vs graph input {i['shape']}")
        feeds[i["name"]] = torch.from_numpy(x.astype(np.float32)).to(dt)

    runs = [("as written", order, w)]
    if args.fold:
        forder, fw, nfold = fold_batch_norms(order, w, set(g["outputs"]))
        runs.append((f"folded ({nfold} batch norms)", forder, fw))
    ok = True
    for label, o, ww in runs:
        vals = run(o, ww, feeds)
        for name in g["outputs"]:
            if name not in ref:
                print(f"  {label}: output '{name}' has no reference tensor; skipped")
                continue
            got, want = vals[name].double(), torch.from_numpy(ref[name].astype(np.float64))
            if got.shape != want.shape:
                sys.exit(f"{name}: shape {list(got.shape)} vs reference {list(want.shape)}")
            rel = ((got - want).norm() / want.norm()).item()
            maxabs = (got - want).abs().max().item()
            agree = (got.flatten(1).argmax(1) == want.flatten(1).argmax(1)).sum().item()
            good = rel <= args.tol
            ok &= good
            print(f"  {label}: '{name}' rel L2 {rel:.3e} (tol {args.tol:g}), max |diff| {maxabs:.3e}, "
                  f"top-1 agreement {agree}/{got.shape[0]}: {'OK' if good else 'FAIL'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except FileError as e:
        sys.exit(f"invalid model file: {e}")
