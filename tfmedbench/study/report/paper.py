"""Published reference numbers for `tfmedbench report --paper FILE`.

The paper's Tables 2, 4 and 5 are NOT bundled: their numbers could not be verified here against
a source text of the paper (the repository README shows the tables only as images), and numbers
that cannot be traced exactly to the publication must not be shipped as "the paper's". Supply
them yourself as a CSV transcribed from the paper, and cite where they come from:

    weights,task,mean,std,source
    imagenet,TXC,...,...,"Hosseinzadeh Taher et al. 2021, Table 2"

`mean` and `std` are in percent (as printed in the paper); `std` and `source` may be empty.
Rows whose (weights, task) is not in the report are ignored with a note.
"""

from __future__ import annotations

import math

import pandas as pd

from tfmedbench.errors import UserError

BUNDLED = None  # see module docstring: no verified transcription is shipped
REQUIRED = ("weights", "task", "mean")


def load_reference(path):
    """{(task, weights): {"mean", "std", "source"}} from a reference CSV."""
    try:
        frame = pd.read_csv(path, dtype={"weights": str, "task": str})
    except (OSError, ValueError) as err:
        raise UserError(f"--paper {path}: cannot read the reference CSV ({err})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(
            f"--paper {path}: missing column(s) {missing}; expected weights,task,mean[,std,source]"
        )
    out = {}
    for _, row in frame.iterrows():
        try:
            mean = float(row["mean"])
        except (TypeError, ValueError):
            raise UserError(f"--paper {path}: non-numeric mean {row['mean']!r}") from None
        std = row.get("std")
        std = float(std) if std is not None and not _isnan(std) else math.nan
        source = row.get("source")
        out[(str(row["task"]).upper(), str(row["weights"]))] = {
            "mean": mean,
            "std": std,
            "source": "" if source is None or _isnan(source) else str(source),
        }
    return out


def _isnan(value):
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False
