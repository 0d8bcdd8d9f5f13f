"""Fake NIH ChestX-ray14 trees in the exact layout of the NIH release.

`write_tree` writes `Data_Entry_2017_v2020.csv` (all 11 columns), the images (in the archive
layout `images_00N/images/` or one `images/` folder; one RGBA PNG like the few NIH ships) and
the official `train_val_list.txt` / `test_list.txt`. `write_paper_lists` adds split lists in the
format of the paper's `Xray14_{train,val,test}_official.txt` (`<image> <14 labels 0/1>`).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)
FINDINGS = ["No Finding", "Cardiomegaly|Emphysema", "Hernia", "Effusion|Infiltration|Mass"]
PAPER_LIST_NAMES = {
    "train": "Xray14_train_official.txt",
    "validation": "Xray14_val_official.txt",
    "test": "Xray14_test_official.txt",
}


def finding(patient, follow_up):
    """The `Finding Labels` cell written for an image (cycles through FINDINGS)."""
    return FINDINGS[(patient + follow_up) % len(FINDINGS)]


def write_tree(root, n_patients=12, *, archive_layout=True, lists=True, size=(16, 12), seed=0):
    """2 images per patient; the v2020 CSV; official lists with patients 1-3 as test.

    Patient p is "PA" when odd, "F" when divisible by 3, aged 40 + p; image 00000005_001.png is
    RGBA. Returns `root`.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows, names = [], []
    for patient in range(1, n_patients + 1):
        for follow_up in range(2):
            name = f"{patient:08d}_{follow_up:03d}.png"
            names.append(name)
            archive = 1 + (patient - 1) * 2 // n_patients  # images_001, images_002
            folder = root / (f"images_{archive:03d}/images" if archive_layout else "images")
            folder.mkdir(parents=True, exist_ok=True)
            grey = rng.integers(0, 256, size, dtype=np.uint8)
            if patient == 5 and follow_up == 1:  # NIH ships a few RGBA PNGs
                Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 255)])).save(
                    folder / name
                )
            else:
                Image.fromarray(grey).save(folder / name)
            view = "PA" if patient % 2 else "AP"
            sex = "M" if patient % 3 else "F"
            rows.append(
                f"{name},{finding(patient, follow_up)},{follow_up},{patient},{40 + patient},"
                f"{sex},{view},2500,2048,0.143,0.143\n"
            )
    (root / "Data_Entry_2017_v2020.csv").write_text(HEADER + "".join(rows))
    if lists:
        test = [n for n in names if int(n[:8]) <= 3]
        (root / "test_list.txt").write_text("\n".join(test) + "\n")
        (root / "train_val_list.txt").write_text(
            "\n".join(n for n in names if n not in test) + "\n"
        )
    return root


def write_paper_lists(folder, label_file, patients, *, label_of=None):
    """Write Xray14_{train,val,test}_official.txt into `folder` for the rows of `label_file`.

    `patients` maps split -> patient ids (the paper's lists are patient-disjoint); each line is
    `<Image Index> <14 labels>` in `datasets_tfds.chestxray14.LABELS` order, from the label file
    unless `label_of(image_index, labels)` returns others. Returns {split: [image, ...]}.
    """
    from datasets_tfds.chestxray14 import chestxray14_dataset_builder as builder

    entries = builder.parse_data_entry(io.StringIO(Path(label_file).read_text()))
    out = {}
    for split, ids in patients.items():
        chosen = [e for e in entries if e.patient_id in set(ids)]
        out[split] = [e.image_index for e in chosen]
        lines = []
        for e in chosen:
            labels = label_of(e.image_index, e.labels) if label_of else e.labels
            lines.append(" ".join([e.image_index, *map(str, labels)]) + "\n")
        Path(folder, PAPER_LIST_NAMES[split]).write_text("".join(lines))
    return out
