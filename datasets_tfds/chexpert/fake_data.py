"""Fake CheXpert-v1.0-small trees in the exact layout of the Stanford release.

`write_tree` writes `train.csv` / `valid.csv` (the 19 columns; CSV paths start with the dataset
folder, as Stanford's do) and the JPEGs under `{train,valid}/patientNNNNN/study1/`: a frontal and
a lateral view per training patient, cells cycling through 1.0, 0.0, -1.0 and blank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datasets_tfds.chexpert.chexpert_dataset_builder import LABELS

TOP = "CheXpert-v1.0-small"
HEADER = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(LABELS) + "\n"
CELLS = ("1.0", "0.0", "-1.0", "")


def cells(seed):
    """The 14 label cells written for a training view (`seed` = patient + view number)."""
    return [CELLS[(seed + i) % 4] for i in range(len(LABELS))]


def write_tree(root, n_train_patients=20, *, top=TOP, size=(20, 16), seed=0):
    """train: a frontal + a lateral view per patient; valid: patients 64541 (2) and 64542 (1).

    The CSV paths always start with TOP (a renamed `top` folder must still work). Returns the
    dataset folder.
    """
    base = Path(root, top)
    rng = np.random.default_rng(seed)
    rows = {"train": [], "valid": []}
    plan = [("train", p, 2) for p in range(1, n_train_patients + 1)]
    plan += [("valid", 64541, 2), ("valid", 64542, 1)]
    for split, patient, n_views in plan:
        for view in range(1, n_views + 1):
            kind = "frontal" if view == 1 else "lateral"
            rel = f"{split}/patient{patient:05d}/study1/view{view}_{kind}.jpg"
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(
                base / rel, quality=90
            )
            row = cells(patient + view) if split == "train" else ["1.0", "0.0"] * 7
            rows[split].append(
                f"{TOP}/{rel},{'Female' if patient % 2 else 'Male'},{30 + patient % 50},"
                f"{kind.capitalize()},{'AP' if kind == 'frontal' else ''},{','.join(row)}\n"
            )
    for split, lines in rows.items():
        (base / f"{split}.csv").write_text(HEADER + "".join(lines))
    return base
