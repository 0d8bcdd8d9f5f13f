"""Synthetic datasets written in the exact raw layouts of the real distributions.

Used by `tfmedbench demo` (no data, no network) and by tests: the generated trees go through the
same TFDS builders and input pipelines as real data. Images are learnable on purpose: "TB" chest
images carry bright blotches in the upper lung fields, "vessels" are dark curved lines.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def chest_xray(rng, size, tb):
    """A grey chest-X-ray-like image: bright mediastinum and ribs, dark lungs, optional lesions."""
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / size
    img = 0.55 + 0.1 * rng.standard_normal((h, w)).astype(np.float32) * 0.3
    for cx in (0.3, 0.7):  # two dark lung fields
        lung = ((xx - cx) / 0.17) ** 2 + ((yy - 0.5) / 0.33) ** 2 < 1
        img[lung] -= 0.3
    img += 0.06 * np.sin(yy * 40 + rng.uniform(0, 6))  # ribs
    if tb:
        for _ in range(rng.integers(2, 5)):
            cx = rng.choice([0.3, 0.7]) + rng.uniform(-0.08, 0.08)
            cy = rng.uniform(0.25, 0.45)
            r = rng.uniform(0.04, 0.08)
            blob = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
            img += 0.45 * blob
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_shenzhen_tree(root, n_images=60, size=128, seed=0, top="ChinaSet_AllFiles"):
    """Write `<root>/<top>/CXR_png/CHNCXR_####_{0,1}.png` (label = suffix, 1 = TB), half each.

    Returns the dataset's top folder.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, top, "CXR_png")
    os.makedirs(folder, exist_ok=True)
    for i in range(n_images):
        tb = i % 2
        img = chest_xray(rng, size, bool(tb))
        Image.fromarray(img, mode="L").save(os.path.join(folder, f"CHNCXR_{i + 1:04d}_{tb}.png"))
    return os.path.join(root, top)


def fundus(rng, height, width):
    """An RGB fundus-like image with a binary vessel tree and a circular field of view."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height / 2, width / 2
    fov = ((yy - cy) / (0.48 * height)) ** 2 + ((xx - cx) / (0.48 * width)) ** 2 < 1
    vessels = np.zeros((height, width), bool)
    for _ in range(rng.integers(5, 9)):
        a, b, ph = rng.uniform(0.5, 2.0), rng.uniform(-0.6, 0.6), rng.uniform(0, 6)
        curve = cy + b * (xx - cx) + 0.15 * height * np.sin(a * xx / width * 6 + ph)
        vessels |= np.abs(yy - curve) < rng.uniform(1.0, 2.5)
    vessels &= fov
    img = np.zeros((height, width, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.75, 0.35, 0.15
    img *= fov[..., None]
    img[vessels] *= 0.45
    img += 0.03 * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), vessels, fov


def write_drive_tree(root, n_train=6, n_test=4, height=584, width=565, seed=0):
    """Write `<root>/DRIVE/{training,test}/...` with TIFF images and GIF masks as DRIVE ships.

    Vessel GIFs are 0/255 (as 1st_manual is), test/2nd_manual 0/1. Returns the DRIVE folder.
    """
    rng = np.random.default_rng(seed)
    top = os.path.join(root, "DRIVE")
    for split, n, first in (("training", n_train, 21), ("test", n_test, 1)):
        d = os.path.join(top, split)
        names = ["images", "1st_manual", "mask"] + (["2nd_manual"] if split == "test" else [])
        for sub in names:
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for i in range(first, first + n):
            img, vessels, fov = fundus(rng, height, width)
            Image.fromarray(img).save(os.path.join(d, "images", f"{i:02d}_{split}.tif"))
            Image.fromarray(vessels.astype(np.uint8) * 255).save(
                os.path.join(d, "1st_manual", f"{i:02d}_manual1.gif")
            )
            Image.fromarray(fov.astype(np.uint8) * 255).save(
                os.path.join(d, "mask", f"{i:02d}_{split}_mask.gif")
            )
            if split == "test":
                Image.fromarray(vessels.astype(np.uint8)).save(
                    os.path.join(d, "2nd_manual", f"{i:02d}_manual2.gif")
                )
    return top
