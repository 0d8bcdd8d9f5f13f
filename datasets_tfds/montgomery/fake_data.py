"""Fake Montgomery County trees in the exact NLM layout.

`write_tree` writes `MontgomerySet/CXR_png/MCUCXR_####_{0,1}.png` and the lung masks
`ManualMask/{leftMask,rightMask}/` with the same names. Like NLM's files: image 1 is a 16-bit PNG
(12-bit values), the others 8-bit; masks are 0/255 except image 2's, which are 0/1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (14, 12)  # rows x columns: not square, so a transposition shows
LEFT = (slice(2, 12), slice(1, 5))  # the two lung rectangles (rows, columns)
RIGHT = (slice(3, 12), slice(7, 11))


def write_tree(root, n_per_class=10, *, seed=0):
    """Write `<root>/MontgomerySet/...` with `2 * n_per_class` images (labels alternate 1, 0).

    Returns the MontgomerySet folder. The union mask of every image is LEFT | RIGHT.
    """
    top = Path(root, "MontgomerySet")
    for sub in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 2 * n_per_class + 1):
        name = f"MCUCXR_{i:04d}_{i % 2}.png"
        if i == 1:
            image = rng.integers(0, 4096, SIZE, dtype=np.uint16)
        else:
            image = rng.integers(0, 256, SIZE, dtype=np.uint8)
        Image.fromarray(image).save(top / "CXR_png" / name)
        scale = 1 if i == 2 else 255
        for side, box in (("leftMask", LEFT), ("rightMask", RIGHT)):
            mask = np.zeros(SIZE, np.uint8)
            mask[box] = scale
            Image.fromarray(mask).save(top / "ManualMask" / side / name)
    return top


def union_mask():
    """The {0, 1} mask every generated image has (leftMask OR rightMask)."""
    mask = np.zeros(SIZE, np.uint8)
    mask[LEFT] = 1
    mask[RIGHT] = 1
    return mask
