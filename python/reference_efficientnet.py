"""Independent PyTorch reference for EfficientNet-Lite0 on the 20 foolbox ImageNet images.

    /usr/bin/python3 python/reference_efficientnet.py data/efficientnet-lite0.pth data/imagenet \
        data/efficientnet-lite0.reference

Builds the network as an nn.Module whose parameter names match the checkpoint (the
EfficientNet-PyTorch layout: _conv_stem, _bn0, _blocks.N._expand_conv/_depthwise_conv/
_project_conv/_bn0/_bn1/_bn2, _conv_head, _bn1, _fc) and loads it with strict=True, so every
checkpoint tensor is accounted for. Convolutions use TensorFlow "SAME" padding computed at run time
from the actual input size (extra row/column at the bottom/right), ReLU6, BatchNorm eps 1e-3.

Preprocessing (PIL): RGB, shorter side resized to 256 (bilinear), centre 224 crop, (x - 127) / 128.

Writes OUT_PREFIX.safetensors (`image` [N,3,224,224] F32, `logits` [N,1000] F32, images in sorted
file-name order) and OUT_PREFIX.json (per image: file, label from the name imagenet_NN_LABEL.jpg,
top1, top1's class name and top-5; plus the number correct). Exits non-zero if fewer than
--min-correct (default 17) of the images are right: that means the architecture or preprocessing
is wrong. No pip package is needed: the safetensors file is written by hand.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

# EfficientNet-Lite0 (= B0 block arguments, no squeeze-excite, ReLU6, stem/head not scaled):
# (repeats, kernel, first stride, expand ratio, in channels, out channels)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
MEAN, STD = 127.0, 128.0
RESIZE, CROP = 256, 224


def same_pad(x, k, s):
    """TF 'SAME' padding for input x (N,C,H,W): total = max((ceil(in/s)-1)*s + k - in, 0)."""
    pads = []
    for n in (x.shape[3], x.shape[2]):  # F.pad order: (left, right, top, bottom)
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SameConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(same_pad(x, self.kernel_size[0], self.stride[0]), self.weight, self.bias,
                        self.stride, 0, self.dilation, self.groups)


def conv(cin, cout, k, s=1, groups=1):
    return SameConv(cin, cout, k, s, groups=groups, bias=False)


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, e):
        super().__init__()
        mid = cin * e
        self.expand = e != 1
        if self.expand:
            self._expand_conv = conv(cin, mid, 1)
            self._bn0 = bn(mid)
        self._depthwise_conv = conv(mid, mid, k, s, groups=mid)
        self._bn1 = bn(mid)
        self._project_conv = conv(mid, cout, 1)
        self._bn2 = bn(cout)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self._conv_stem = conv(3, 32, 3, 2)
        self._bn0 = bn(32)
        blocks = []
        for reps, k, s, e, cin, cout in STAGES:
            for r in range(reps):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = conv(320, 1280, 1)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, classes)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def load_model(path):
    sd = torch.load(path, map_location="cpu")
    if not isinstance(sd, dict):
        sd = sd.state_dict()
    m = EfficientNetLite0(sd["_fc.weight"].shape[0])
    m.load_state_dict(sd, strict=True)  # every key and every shape must match
    return m.eval()


def preprocess(path):
    """RGB, shorter side -> 256 (bilinear), centre 224 crop, (x - 127) / 128, CHW float32."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    if w <= h:
        nw, nh = RESIZE, int(round(h * RESIZE / w))
    else:
        nw, nh = int(round(w * RESIZE / h)), RESIZE
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - CROP) / 2.0)), int(round((nh - CROP) / 2.0))
    im = im.crop((left, top, left + CROP, top + CROP))
    a = np.asarray(im, dtype=np.float32)  # HWC, 0..255
    return ((a - MEAN) / STD).transpose(2, 0, 1).copy()


def write_safetensors(path, tensors):
    """Hand-written safetensors: u64 LE header size, JSON header padded with spaces to a multiple
    of 8, then the raw little-endian bytes of each tensor in order."""
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def class_names():
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
        return list(_IMAGENET_CATEGORIES)
    except ImportError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="efficientnet-lite0 .pth state dict")
    ap.add_argument("images", help="folder with imagenet_NN_LABEL.jpg files")
    ap.add_argument("out_prefix", help="writes OUT_PREFIX.safetensors and OUT_PREFIX.json")
    ap.add_argument("--min-correct", type=int, default=17)
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    files = sorted(f for f in os.listdir(args.images) if re.fullmatch(r"imagenet_\d+_\d+\.jpe?g", f))
    if not files:
        sys.exit(f"no imagenet_NN_LABEL.jpg files in {args.images}")
    labels = [int(re.fullmatch(r"imagenet_\d+_(\d+)\.jpe?g", f).group(1)) for f in files]

    t0 = time.time()
    model = load_model(args.model)
    x = torch.from_numpy(np.stack([preprocess(os.path.join(args.images, f)) for f in files]))
    logits = model(x)
    dt = time.time() - t0

    names = class_names()
    top5 = logits.topk(5, dim=1).indices.tolist()
    rows, correct = [], 0
    for f, lab, t5 in zip(files, labels, top5):
        ok = t5[0] == lab
        correct += ok
        row = {"file": f, "label": lab, "top1": t5[0], "correct": ok, "top5": t5}
        if names:
            row["label_name"], row["top1_name"] = names[lab], names[t5[0]]
        rows.append(row)
        print(f"{f:24s} label {lab:4d} top1 {t5[0]:4d} {'ok ' if ok else 'MISS'}"
              + (f"  {names[t5[0]]!r}" + ("" if ok else f" (true {names[lab]!r})") if names else ""))

    write_safetensors(args.out_prefix + ".safetensors",
                      {"image": x.numpy(), "logits": logits.numpy()})
    summary = {"model": os.path.basename(args.model), "images": rows, "correct": correct,
               "total": len(files),
               "preprocess": {"color": "rgb", "resize": RESIZE, "resize_filter": "PIL bilinear",
                              "crop": CROP, "mean": [MEAN] * 3, "std": [STD] * 3}}
    with open(args.out_prefix + ".json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(f"reference: {correct}/{len(files)} top-1 correct ({dt:.2f}s); wrote "
          f"{args.out_prefix}.safetensors and {args.out_prefix}.json")
    if correct < args.min_correct:
        sys.exit(f"only {correct}/{len(files)} correct (< {args.min_correct}): architecture or "
                 "preprocessing is wrong")


if __name__ == "__main__":
    main()
