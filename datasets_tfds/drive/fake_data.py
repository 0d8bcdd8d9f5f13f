"""Fake DRIVE trees in the exact layout and file formats of the official zips, learnable.

`write_tree` writes `DRIVE/{training,test}/...`: RGB TIFF fundus images of 565x584 (W x H) with
dark curved vessels inside a circular field of view, 1st_manual vessel GIFs (0/255), FOV mask
GIFs (0/255) and, for test, 2nd_manual palette GIFs whose index 0 is the near-black (4, 2, 4) as
DRIVE's are. The vessels are visible in the image, so a segmentation model can learn them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 584, 565  # every DRIVE image (the builder checks it)


def fundus(rng, height=HEIGHT, width=WIDTH):
    """(RGB uint8 image, bool vessels, bool field of view) of a fundus-like picture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height / 2, width / 2
    fov = ((yy - cy) / (0.48 * height)) ** 2 + ((xx - cx) / (0.48 * width)) ** 2 < 1
    vessels = np.zeros((height, width), bool)
    x = xx[:1]  # each vessel is a curve y(x): computed once per column, not per pixel
    for _ in range(rng.integers(5, 9)):
        a, b, ph = rng.uniform(0.5, 2.0), rng.uniform(-0.6, 0.6), rng.uniform(0, 6)
        curve = cy + b * (x - cx) + 0.15 * height * np.sin(a * x / width * 6 + ph)
        vessels |= np.abs(yy - curve) < rng.uniform(1.0, 2.5)
    vessels &= fov
    img = np.zeros((height, width, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.75, 0.35, 0.15
    img *= fov[..., None]
    img[vessels] *= 0.45
    img += 0.03 * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), vessels, fov


def write_tree(root, n_train=6, n_test=2, *, seed=0):
    """Write `<root>/DRIVE/{training,test}/...` (training numbered from 21, test from 1).

    Returns the DRIVE folder.
    """
    rng = np.random.default_rng(seed)
    top = Path(root, "DRIVE")
    for split, n, first in (("training", n_train, 21), ("test", n_test, 1)):
        folder = top / split
        subs = ["images", "1st_manual", "mask"] + (["2nd_manual"] if split == "test" else [])
        for sub in subs:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        for number in range(first, first + n):
            image, vessels, fov = fundus(rng)
            Image.fromarray(image).save(folder / "images" / f"{number:02d}_{split}.tif")
            Image.fromarray(vessels.astype(np.uint8) * 255).save(
                folder / "1st_manual" / f"{number:02d}_manual1.gif"
            )
            Image.fromarray(fov.astype(np.uint8) * 255).save(
                folder / "mask" / f"{number:02d}_{split}_mask.gif"
            )
            if split == "test":  # a second observer: here the same vessels, as a palette GIF
                second = Image.fromarray(vessels.astype(np.uint8), "P")
                second.putpalette([4, 2, 4, 252, 254, 252] + [0, 0, 0] * 254)
                second.save(folder / "2nd_manual" / f"{number:02d}_manual2.gif")
    return top
