"""The canonical backbone: torchvision ResNet state-dict keys and shapes (torch layouts).

Readers produce exactly these keys; the Keras assignment consumes exactly these keys. Both sides
derive them from (depths, width), the knobs `tfmedbench.models.resnet50` takes.
"""

from __future__ import annotations

RESNET50_DEPTHS = (3, 4, 6, 3)
RESNET50_WIDTH = 64
EXPANSION = 4
BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def conv_bn_pairs(depths=RESNET50_DEPTHS):
    """(conv module, bn module, block) in torchvision forward order; block is None for the stem.

    Within a block: conv1/bn1, conv2/bn2, conv3/bn3, then downsample.0/downsample.1 (first block
    of each stage only) -- the order of torchvision's Bottleneck.__init__.
    """
    pairs = [("conv1", "bn1", None)]
    for stage, blocks in enumerate(depths, start=1):
        for b in range(blocks):
            block = f"layer{stage}.{b}"
            for k in (1, 2, 3):
                pairs.append((f"{block}.conv{k}", f"{block}.bn{k}", block))
            if b == 0:
                pairs.append((f"{block}.downsample.0", f"{block}.downsample.1", block))
    return pairs


def conv_shapes(depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """conv module -> OIHW shape."""
    shapes = {"conv1": (width, 3, 7, 7)}
    inplanes = width
    for stage, blocks in enumerate(depths, start=1):
        planes = width * 2 ** (stage - 1)
        for b in range(blocks):
            block = f"layer{stage}.{b}"
            shapes[f"{block}.conv1"] = (planes, inplanes, 1, 1)
            shapes[f"{block}.conv2"] = (planes, planes, 3, 3)
            shapes[f"{block}.conv3"] = (planes * EXPANSION, planes, 1, 1)
            if b == 0:
                shapes[f"{block}.downsample.0"] = (planes * EXPANSION, inplanes, 1, 1)
            inplanes = planes * EXPANSION
    return shapes


def expected_shapes(depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    """Every canonical backbone key -> shape (no `fc`, no `num_batches_tracked`)."""
    convs = conv_shapes(depths, width)
    out = {}
    for conv, bn, _ in conv_bn_pairs(depths):
        out[f"{conv}.weight"] = convs[conv]
        for field in BN_FIELDS:
            out[f"{bn}.{field}"] = (convs[conv][0],)
    return out


def feature_dim(depths=RESNET50_DEPTHS, width=RESNET50_WIDTH):
    return width * 2 ** (len(depths) - 1) * EXPANSION
