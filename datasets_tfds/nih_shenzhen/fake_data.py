"""Fake NIH Shenzhen trees in the exact NLM layout, with learnable images.

`write_tree` writes `ChinaSet_AllFiles/CXR_png/CHNCXR_####_{0,1}.png` (label = last digit) as
NLM ships it, including its odd files: one RGB PNG and one 16-bit PNG holding 12-bit values.
"Tuberculosis" images carry bright blotches in the upper lung fields, so a model can learn the
task (`tfmedbench demo` and the training tests fit on these). `write_paper_lists` adds split
lists in the format of the paper's `ShenzenCXR_{train,valid,test}_data.txt`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PAPER_LIST_NAMES = {
    "train": "ShenzenCXR_train_data.txt",
    "validation": "ShenzenCXR_valid_data.txt",
    "test": "ShenzenCXR_test_data.txt",
}


def chest_xray(rng, size, tb):
    """A grey chest-X-ray-like uint8 image: bright mediastinum and ribs, dark lungs, and with `tb`
    2-4 bright blotches in the upper lung fields. `size` is an int or (height, width)."""
    height, width = (size, size) if np.isscalar(size) else size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = yy / height, xx / width
    img = 0.55 + 0.03 * rng.standard_normal((height, width)).astype(np.float32)
    for cx in (0.3, 0.7):  # two dark lung fields
        lung = ((xx - cx) / 0.17) ** 2 + ((yy - 0.5) / 0.33) ** 2 < 1
        img[lung] -= 0.3
    img += 0.06 * np.sin(yy * 40 + rng.uniform(0, 6))  # ribs
    if tb:
        for _ in range(rng.integers(2, 5)):
            cx = rng.choice([0.3, 0.7]) + rng.uniform(-0.08, 0.08)
            cy = rng.uniform(0.25, 0.45)
            r = rng.uniform(0.04, 0.08)
            img += 0.45 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_tree(root, n_images=20, *, size=64, seed=0, top="ChinaSet_AllFiles", odd_files=True):
    """Write `<root>/<top>/CXR_png/CHNCXR_####_{0,1}.png`, labels alternating 0, 1, 0, ...

    `top=None` writes a bare `<root>/CXR_png/`. With `odd_files`, image 1 is stored as RGB (grey
    in three channels) and image 2 as a 16-bit PNG of its values times 16 (12-bit data), as a few
    NLM files are; both convert back to exactly the grey image. Returns the CXR_png folder.
    """
    folder = Path(root, top, "CXR_png") if top else Path(root, "CXR_png")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_images):
        label = i % 2
        grey = chest_xray(rng, size, bool(label))
        path = folder / f"CHNCXR_{i + 1:04d}_{label}.png"
        if odd_files and i == 0:
            Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(path)
        elif odd_files and i == 1:
            Image.fromarray(grey.astype(np.uint16) * 16).save(path)
        else:
            Image.fromarray(grey, "L").save(path)
    return folder


def write_paper_lists(folder, image_dir, counts, *, seed=0):
    """Write ShenzenCXR_{train,valid,test}_data.txt into `folder`, listing the images of
    `image_dir` as `CHNCXR_0402_1.png,1` lines (the paper's format), `counts` = {split: n} taken
    in a seeded shuffle. Returns {split: [file name, ...]}."""
    names = sorted(p.name for p in Path(image_dir).glob("CHNCXR_*.png"))
    order = np.random.default_rng(seed).permutation(len(names))
    out, start = {}, 0
    for split, n in counts.items():
        out[split] = [names[i] for i in order[start:start + n]]
        start += n
        lines = [f"{name},{name[-5]}\n" for name in out[split]]
        Path(folder, PAPER_LIST_NAMES[split]).write_text("".join(lines))
    return out
