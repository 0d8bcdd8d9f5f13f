"""Fake SIIM-ACR pneumothorax trees in the challenge's layout (needs pydicom to write DICOMs).

`write_tree` writes `siim-acr-pneumothorax/train-rle.csv` (header `ImageId, EncodedPixels`, the
challenge's relative column-major RLE, several rows per positive image, `-1` / ` -1` for empty
masks) and real DICOM files (file meta, MONOCHROME2 and one MONOCHROME1, UIDs) under
`dicom-images-train/<study>/<series>/<sop>.dcm`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets_tfds import dicom, rle

SIZE = (32, 24)  # rows x columns: not square, so a transposition error shows


def write_tree(root, n_per_class=10, *, flat=False, extra_unlabelled=1, size=SIZE, seed=0):
    """<root>/siim-acr-pneumothorax/{train-rle.csv, dicom-images-train/...}; returns the truth.

    Returns {image_id: (pixels as displayed, mask)} for the labelled images. Positive images get
    two RLE rows (two rectangles: the union is the mask); one negative row is written ' -1' as
    some copies of the file do. `extra_unlabelled` DICOMs get no CSV row. Image 3 is MONOCHROME1.
    `size`: (rows, columns) of every image.
    """
    top = Path(root, "siim-acr-pneumothorax")
    rng = np.random.default_rng(seed)
    truth, rows = {}, []
    for i in range(2 * n_per_class + extra_unlabelled):
        study, series, sop = (f"1.2.826.0.1.{i}.{k}" for k in (1, 2, 3))
        folder = top / "dicom-images-train" if flat else top / "dicom-images-train" / study / series
        pixels = rng.integers(0, 256, size, dtype=np.uint8)
        photometric = "MONOCHROME1" if i == 3 else "MONOCHROME2"
        dicom.write(folder / f"{sop}.dcm", pixels, photometric=photometric,
                    study_uid=study, series_uid=series, sop_uid=sop)  # fmt: skip
        if i >= 2 * n_per_class:
            continue  # DICOM without a CSV row
        mask = np.zeros(size, np.uint8)
        if i % 2:
            for top_left in ((1 + i % 5, 2), (20, 3 + i % 7)):
                region = np.zeros(size, np.uint8)
                region[top_left[0]:top_left[0] + 6, top_left[1]:top_left[1] + 9] = 1
                rows.append((sop, rle.encode(region)))
                mask |= region
        else:
            rows.append((sop, " -1" if i == 4 else "-1"))
        visible = 255 - pixels if photometric == "MONOCHROME1" else pixels
        truth[sop] = (visible, mask)
    lines = ["ImageId, EncodedPixels"] + [f"{sop},{code}" for sop, code in rows]
    (top / "train-rle.csv").write_text("\n".join(lines) + "\n")
    return truth
