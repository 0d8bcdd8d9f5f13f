"""Fake RSNA STR pulmonary embolism trees in the competition's layout (needs pydicom).

`write_tree` writes `rsna-str-pulmonary-embolism-detection/train.csv` (all 17 columns) and real
CT DICOM files `train/<study>/<series>/<sop>.dcm` (file meta, MONOCHROME2, signed and unsigned
pixels, RescaleSlope/Intercept, ImagePositionPatient, InstanceNumber). Slices are written in an
order that differs from both their z order and their InstanceNumber order, so a wrong sort shows;
it returns the examples the builder must produce, windowed by `reference_window`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets_tfds import dicom
from datasets_tfds.rsna_pe import rsna_pe_dataset_builder as builder

TOP = "rsna-str-pulmonary-embolism-detection"
SIZE = (16, 12)


def reference_window(hu, wl=100, ww=700):
    """The RSNA-PE 1st-place `window` function, verbatim in behaviour (non-uniform slices)."""
    upper, lower = wl + ww // 2, wl - ww // 2
    x = np.clip(hu.copy(), lower, upper)
    x = x - np.min(x)
    x = x / np.max(x)
    return (x * 255.0).astype("uint8")


def write_tree(root, n_per_class=7, *, series_slices=None, no_position=(), size=SIZE, seed=0):
    """Write train.csv + train/<study>/<series>/<sop>.dcm; return {sop: expected example}.

    `series_slices` maps study index -> list of slice counts, one per series (default: one
    series of 3 slices). Studies in `no_position` have no ImagePositionPatient, so their slices
    are ordered by InstanceNumber. `size`: (rows, columns) of every slice.
    """
    top = Path(root, TOP)
    rng = np.random.default_rng(seed)
    lines = [",".join(builder.CSV_COLUMNS)]
    expected = {}
    for i in range(2 * n_per_class):
        study = f"{i:03d}aa0000000"
        positive = i < n_per_class
        flags = rng.integers(0, 2, len(builder.STUDY_COLUMNS) - 1)
        study_flags = [0 if positive else 1] + list(flags)
        for j, n_slices in enumerate((series_slices or {}).get(i, [3])):
            series = f"{i:03d}bb{j:07d}"
            # Written in SOP order; z descends and InstanceNumber is shuffled, so the true
            # order (ascending z) differs from SOP order and InstanceNumber order.
            numbers = rng.permutation(n_slices) + 1
            slices = []
            for k in range(n_slices):
                sop = f"{i:03d}cc{j:02d}{k:05d}"
                hu = rng.integers(-1024, 1600, size).astype(np.float64)
                hu[0, 0], hu[0, 1] = -1000, 1200  # reach both window ends, like a chest slice
                if i % 2:  # signed storage, slope 1
                    stored, slope, intercept = hu.astype(np.int16), 1.0, 0.0
                else:  # unsigned 12-bit storage with the usual -1024 intercept, slope 2
                    hu = np.round(hu / 2) * 2
                    stored, slope, intercept = ((hu + 1024) / 2).astype(np.uint16), 2.0, -1024.0
                z = 50.0 - 2.5 * k
                position = {} if i in no_position else {"ImagePositionPatient": [0.0, 0.0, z]}
                dicom.write(
                    top / "train" / study / series / f"{sop}.dcm", stored, modality="CT",
                    bits_stored=12 if stored.dtype == np.uint16 else 16, study_uid=study,
                    series_uid=series, sop_uid=sop, RescaleSlope=slope,
                    RescaleIntercept=intercept, InstanceNumber=int(numbers[k]), **position,
                )  # fmt: skip
                pe = int(positive and k == 1)
                fields = [study, series, sop, pe, *study_flags]
                lines.append(",".join(str(f) for f in fields))
                rank = -k if i not in no_position else numbers[k]  # ascending z = descending k
                slices.append((rank, sop, reference_window(hu), pe))
            slices.sort()
            for index, (_, sop, _, pe) in enumerate(slices):
                neighbours = [slices[max(index - 1, 0)][2], slices[index][2],
                              slices[min(index + 1, n_slices - 1)][2]]  # fmt: skip
                expected[sop] = {
                    "image": np.stack(neighbours, axis=-1), "label": pe, "study_id": study,
                    "series_id": series, "slice_index": index,
                    **dict(zip(builder.STUDY_COLUMNS, map(bool, study_flags))),
                }  # fmt: skip
    (top / "train.csv").write_text("\n".join(lines) + "\n")
    return expected
