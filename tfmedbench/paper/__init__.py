"""The paper's published numbers (Tables 2-8), bundled as package data.

Source: M. R. Hosseinzadeh Taher, F. Haghighi, R. Feng, M. B. Gotway, J. Liang. "A Systematic
Benchmarking Analysis of Transfer Learning for Medical Image Analysis". Domain Adaptation and
Representation Transfer (DART), MICCAI 2021 workshops, LNCS 12968 (arXiv:2108.05930).

`published_results.csv` (beside this module; README.md there describes it) holds every number of
the paper's Tables 2-8 as printed: one row per (table, initialization, task, quantity), mean and
std in percent (scores) or epochs. The paper reports mean +- std over ten runs per cell; the
original code printed `np.std` (ddof = 0), which is how `PAPER_DDOF` reads the std.

Initialization names are the tables' own (`Scratch` in Table 2 and `Random` elsewhere,
`Supervised` = supervised ImageNet in Tables 5 and 7, `CXR14` = ChestX-ray14 in Table 8, ...);
`INITIALIZATIONS` maps each to its name in `weights_converter.registry`.

One cell (task, initialization, quantity) can be printed by several tables, and three differ as
printed (Random DXC14 80.31 +- 0.10 in Tables 2, 4, 8 vs 80.40 +- 0.05 in Table 7; Random DXC5
86.60 +- 0.17 in Table 2 vs 86.62 +- 0.46 in Table 4; ImageNet->CheXpert LXS std 0.05 in Table 2
vs 0.051 in Table 8). Canonical rule (`canonical`): the value of the LOWEST-NUMBERED table that
prints the cell -- Tables 2-5 are the paper's result tables, 6-8 repeat their scores beside the
convergence epochs -- and every differing print stays visible in `PaperCell.variants`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from importlib import resources

CSV_NAME = "published_results.csv"
CITATION = (
    "Hosseinzadeh Taher, Haghighi, Feng, Gotway, Liang. A Systematic Benchmarking Analysis of "
    "Transfer Learning for Medical Image Analysis. DART 2021 (MICCAI workshops), arXiv:2108.05930"
)
PAPER_N = 10  # runs per cell in the paper
PAPER_DDOF = 0  # the original code printed np.std
COLUMNS = ("table", "initialization", "task", "quantity", "metric", "mean", "std")
QUANTITIES = ("score", "epochs")
TASKS = ("ECC", "DXC14", "DXC5", "TXC", "LXS", "VFS", "PXS")

TABLES = {
    2: "in-domain (CheXpert, ChestX-ray14) and domain-adapted (ImageNet -> in-domain) "
       "pre-training vs ImageNet and scratch",
    3: "iNat2021 mini vs iNat2021 vs ImageNet (segmentation)",
    4: "iNat2021 vs ImageNet vs random initialization",
    5: "14 self-supervised ImageNet models vs supervised ImageNet",
    6: "convergence epochs: iNat2021, ImageNet, random (segmentation)",
    7: "convergence epochs: self-supervised models, supervised ImageNet, random",
    8: "convergence epochs: in-domain and domain-adapted models, ImageNet, random",
}  # fmt: skip

# The tables' initialization names -> weights_converter.registry names.
INITIALIZATIONS = {
    "Scratch": "random",
    "Random": "random",
    "ImageNet": "imagenet",
    "Supervised": "imagenet",
    "iNat2021": "inat2021",
    "iNat2021 mini": "inat2021-mini",
    "InsDis": "insdis",
    "MoCo-v1": "moco-v1",
    "MoCo-v2": "moco-v2",
    "PCL-v1": "pcl-v1",
    "PCL-v2": "pcl-v2",
    "PIRL": "pirl",
    "SimCLR-v1": "simclr-v1",
    "SimCLR-v2": "simclr-v2",
    "SeLa-v2": "sela-v2",
    "InfoMin": "infomin",
    "BYOL": "byol",
    "DeepCluster-v2": "deepcluster-v2",
    "SwAV": "swav",
    "Barlow Twins": "barlow",
    "CheXpert": "chexpert",
    "CheXpert [22]": "chexpert",
    "ChestX-ray14 [37]": "chestxray14",
    "CXR14": "chestxray14",
    "ImageNet→CheXpert": "imagenet-chexpert",
    "ImageNet→ChestX-ray14": "imagenet-chestxray14",
    "ImageNet→CXR14": "imagenet-chestxray14",
}


@dataclasses.dataclass(frozen=True)
class PaperRow:
    table: int
    initialization: str  # as the table prints it
    weights: str  # registry name
    task: str
    quantity: str  # "score" | "epochs"
    metric: str  # "AUC" | "Dice" | "epochs"
    mean: float
    std: float
    mean_text: str = ""  # the digits as printed (80.31, 0.10, 0.051, 71)
    std_text: str = ""

    def text(self):
        return f"{self.mean_text or self.mean} ± {self.std_text or self.std}"


@dataclasses.dataclass(frozen=True)
class PaperCell:
    """One (task, weights, quantity) of the paper: the canonical print and every other one."""

    task: str
    weights: str
    quantity: str
    metric: str
    mean: float
    std: float
    table: int  # the table the canonical value comes from
    tables: tuple  # every table printing the cell (ascending)
    variants: tuple  # PaperRow of the tables whose print differs from the canonical one
    row: PaperRow | None = None  # the canonical print
    n: int = PAPER_N
    std_ddof: int = PAPER_DDOF

    def text(self):
        return self.row.text() if self.row else f"{self.mean} ± {self.std}"

    def source(self):
        text = f"Table {self.table}"
        for v in self.variants:
            text += f" (Table {v.table} prints {v.text()})"
        return text


def csv_text():
    """The bundled CSV as text (package data)."""
    return resources.files(__name__).joinpath(CSV_NAME).read_text(encoding="utf-8")


def load_rows(text=None):
    """Every row of the published numbers (bundled file, or `text` in the same format)."""
    reader = csv.DictReader(io.StringIO(csv_text() if text is None else text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"{CSV_NAME}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
    rows = []
    for lineno, raw in enumerate(reader, start=2):
        name = raw["initialization"]
        if name not in INITIALIZATIONS:
            raise ValueError(f"{CSV_NAME}:{lineno}: initialization {name!r} has no registry name")
        if raw["quantity"] not in QUANTITIES or raw["task"] not in TASKS:
            raise ValueError(
                f"{CSV_NAME}:{lineno}: unknown task/quantity {raw['task']!r}/{raw['quantity']!r}"
            )
        mean, std = float(raw["mean"]), float(raw["std"])
        if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"{CSV_NAME}:{lineno}: mean/std must be finite, std >= 0")
        rows.append(PaperRow(int(raw["table"]), name, INITIALIZATIONS[name], raw["task"],
                             raw["quantity"], raw["metric"], mean, std, raw["mean"].strip(),
                             raw["std"].strip()))  # fmt: skip
    return rows


def canonical(rows=None):
    """{(task, weights, quantity): PaperCell}; value of the lowest-numbered table printing it."""
    groups = {}
    for row in load_rows() if rows is None else rows:
        groups.setdefault((row.task, row.weights, row.quantity), []).append(row)
    out = {}
    for key, group in groups.items():
        group = sorted(group, key=lambda r: r.table)
        first = group[0]
        variants = tuple(r for r in group[1:] if (r.mean, r.std) != (first.mean, first.std))
        out[key] = PaperCell(first.task, first.weights, first.quantity, first.metric, first.mean,
                             first.std, first.table, tuple(r.table for r in group), variants,
                             first)  # fmt: skip
    return out


def cells_of(task=None, table=None, rows=None):
    """Rows filtered by task (any case) and/or table number, in file order."""
    rows = load_rows() if rows is None else rows
    if task is not None:
        task = str(task).upper()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; the paper's tasks: {', '.join(TASKS)}")
        rows = [r for r in rows if r.task == task]
    if table is not None:
        if int(table) not in TABLES:
            raise ValueError(f"the paper's tables are {min(TABLES)}-{max(TABLES)}, got {table}")
        rows = [r for r in rows if r.table == int(table)]
    return rows


__all__ = ["CITATION", "INITIALIZATIONS", "PAPER_DDOF", "PAPER_N", "TABLES", "PaperCell",
           "PaperRow", "canonical", "cells_of", "csv_text", "load_rows"]  # fmt: skip
