"""NIN for 1x28x28 Fashion-MNIST and its Deep Roots variants (root / tree / col).

Variant names: nin28 (g2 = g3 = 1), nin28-root-g (g2 = g, g3 = g/2), nin28-tree-g (g2 = g,
g3 = 2g), nin28-col-g (g2 = g3 = g), g in 2, 4, 8, 16.

Module names are the names in the exported graph: conv `convXY` is followed by batch norm
`bnXY` (except conv3c), so state_dict keys are the safetensors tensor names.
"""
import re

import torch
from torch import nn

# (name, c_in, c_out, kernel, which group count applies); pools sit after conv1c and conv2c.
LAYERS = [
    ("conv1a", 1, 192, 5, None), ("conv1b", 192, 160, 1, None), ("conv1c", 160, 96, 1, None),
    ("conv2a", 96, 192, 5, "g2"), ("conv2b", 192, 192, 1, None), ("conv2c", 192, 192, 1, None),
    ("conv3a", 192, 192, 3, "g3"), ("conv3b", 192, 192, 1, None), ("conv3c", 192, 10, 1, None),
]
SPATIAL = {"1": 28, "2": 14, "3": 7}  # input = output size of the convs in each stage
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
VARIANTS = ["nin28"] + [f"nin28-{k}-{g}" for k in ("root", "tree", "col") for g in (2, 4, 8, 16)]


def groups_of(name):
    """Returns (g2, g3) for a variant name."""
    if name == "nin28":
        return 1, 1
    m = re.fullmatch(r"nin28-(root|tree|col)-(2|4|8|16)", name)
    if not m:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    g = int(m.group(2))
    return g, {"root": g // 2, "tree": 2 * g, "col": g}[m.group(1)]


def layer_specs(name):
    """[(name, c_in, c_out, k, groups, spatial)] for every conv of the variant."""
    g2, g3 = groups_of(name)
    gmap = {None: 1, "g2": g2, "g3": g3}
    return [(n, ci, co, k, gmap[g], SPATIAL[n[4]]) for n, ci, co, k, g in LAYERS]


def cost(name):
    """(multiply-adds, params): conv MACs C_out*H*W*(C_in/g)*kh*kw; conv weights + biases."""
    macs = params = 0
    for _, ci, co, k, g, s in layer_specs(name):
        macs += co * s * s * (ci // g) * k * k
        params += co * (ci // g) * k * k + co
    return macs, params


class NIN28(nn.Module):
    def __init__(self, name, dropout=0.0):
        super().__init__()
        self.name = name
        self.specs = layer_specs(name)
        for n, ci, co, k, g, _ in self.specs:
            setattr(self, n, nn.Conv2d(ci, co, k, padding=k // 2, groups=g, bias=True))
            if n != "conv3c":  # the classifier conv feeds global average pooling directly
                setattr(self, "bn" + n[4:], nn.BatchNorm2d(co))
        # ceil_mode=True gives 28 -> 14 -> 7 (the original NIN/Caffe pooling arithmetic).
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pool2 = nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=True)
        # Dropout after pool1/pool2 (as in NIN) only matters for training; export ignores it.
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        for n, *_ in self.specs:
            x = getattr(self, n)(x)
            if n != "conv3c":
                x = torch.relu(getattr(self, "bn" + n[4:])(x))
            if n == "conv1c":
                x = self.drop(self.pool1(x))
            elif n == "conv2c":
                x = self.drop(self.pool2(x))
        return x.mean((2, 3))  # pool3 (global average) + flatten -> logits


def build(name, dropout=0.0):
    return NIN28(name, dropout)


if __name__ == "__main__":
    for v in VARIANTS:
        m, p = cost(v)
        print(f"{v:16s} g2,g3={groups_of(v)}  MACs {m / 1e6:7.1f}M  params {p / 1e3:7.1f}k")
