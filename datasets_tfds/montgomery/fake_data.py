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


def _scaled(box, size):
    """A (rows, columns) box of SIZE scaled to `size`."""
    return tuple(slice(s.start * n // m, s.stop * n // m) for s, n, m in zip(box, size, SIZE))


def write_tree(root, n_per_class=10, *, size=SIZE, seed=0):
    """Write `<root>/MontgomerySet/...` with `2 * n_per_class` images (labels alternate 1, 0)
    of `size` (rows, columns).

    Returns the MontgomerySet folder. The union mask of every image is `union_mask(size)`.
    """
    top = Path(root, "MontgomerySet")
    for sub in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 2 * n_per_class + 1):
        name = f"MCUCXR_{i:04d}_{i % 2}.png"
        if i == 1:
            image = rng.integers(0, 4096, size, dtype=np.uint16)
        else:
            image = rng.integers(0, 256, size, dtype=np.uint8)
        Image.fromarray(image).save(top / "CXR_png" / name)
        scale = 1 if i == 2 else 255
        for side, box in (("leftMask", LEFT), ("rightMask", RIGHT)):
            mask = np.zeros(size, np.uint8)
            mask[_scaled(box, size)] = scale
            Image.fromarray(mask).save(top / "ManualMask" / side / name)
    return top


def union_mask(size=SIZE):
    """The {0, 1} mask every generated image of `size` has (leftMask OR rightMask)."""
    mask = np.zeros(size, np.uint8)
    mask[_scaled(LEFT, size)] = 1
    mask[_scaled(RIGHT, size)] = 1
    return mask
