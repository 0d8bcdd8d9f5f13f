"""The paper's numbers beside the measured ones: the bundled reference or a user-supplied CSV.

By default the report compares with the numbers bundled in `tfmedbench.paper` (Tables 2-8 of
Hosseinzadeh Taher et al., DART 2021). `--paper FILE` replaces them with a CSV of your own:

    weights,task,mean,std,source[,n,quantity,std_ddof]
    imagenet,TXC,95.62,0.63,"Hosseinzadeh Taher et al. 2021, Table 4"

`mean` and `std` in percent (scores) or epochs (`quantity` = epochs); `n` defaults to 10 runs,
`quantity` to score, `std_ddof` to 0 (a std printed by np.std, as the paper's); `std` and
`source` may be empty. Only the default slice (fine-tuning, 100% of the labels) is compared: the
paper's numbers are for that protocol.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tfmedbench.errors import UserError
from tfmedbench.study import stats
from tfmedbench.study.report.data import DEFAULT_FRACTION, DEFAULT_PROTOCOL, SCALE

REQUIRED = ("weights", "task", "mean")
MAX_ROWS = 100_000


def bundled_reference():
    """The paper's canonical cells as a reference: {"label", "user", "cells"}."""
    from tfmedbench import paper

    cells = {
        (c.quantity, task, weights): dict(mean=c.mean, std=c.std, n=c.n, std_ddof=c.std_ddof,
                                          source=c.source(), table=c.table)  # fmt: skip
        for (task, weights, _), c in paper.canonical().items()
    }
    return {"label": "the paper's Tables 2–8 (bundled with tfmedbench; `tfmedbench paper`)",
            "citation": f"{paper.CITATION}; its Tables 2–8 are bundled (`tfmedbench paper`)",
            "user": False, "cells": cells}  # fmt: skip


def load_reference(path):
    """A user-supplied reference CSV (see the module docstring) in the bundled one's shape."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"--paper {path}: cannot read the reference CSV ({err})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(
            f"--paper {path}: missing column(s) {missing}; expected weights,task,mean[,std,source,"
            "n,quantity,std_ddof]"
        )
    if len(frame) > MAX_ROWS:
        raise UserError(f"--paper {path}: more than {MAX_ROWS} rows")
    cells = {}
    for lineno, row in enumerate(frame.to_dict("records"), start=2):
        quantity = (row.get("quantity") or "score").strip().lower()
        if quantity not in ("score", "epochs"):
            raise UserError(
                f"--paper {path}:{lineno}: quantity must be score or epochs, got {quantity!r}"
            )
        mean = _number(path, lineno, "mean", row["mean"])
        std = _number(path, lineno, "std", row.get("std") or "nan")
        n = _number(path, lineno, "n", row.get("n") or "10")
        ddof = _number(path, lineno, "std_ddof", row.get("std_ddof") or "0")
        if not math.isfinite(mean) or n < 1 or n != int(n) or ddof not in (0, 1):
            raise UserError(
                f"--paper {path}:{lineno}: need a finite mean, integer n >= 1, std_ddof 0 or 1"
            )
        cells[(quantity, str(row["task"]).strip().upper(), str(row["weights"]).strip())] = dict(
            mean=mean, std=std, n=int(n), std_ddof=int(ddof),
            source=str(row.get("source") or "").strip(), table=None,
        )  # fmt: skip
    return {
        "label": f"`{path}` (user-supplied; not produced by this run)",
        "user": True,
        "cells": cells,
    }


def _number(path, lineno, column, text):
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UserError(f"--paper {path}:{lineno}: non-numeric {column} {text!r}") from None


def canonical_weights(label):
    """The registry name of a weights label (aliases resolved), else the label itself."""
    try:
        from weights_converter.registry import ALIASES, BY_NAME
    except ImportError:  # the registry ships with tfmedbench; be safe anyway
        return label
    key = str(label).strip().lower().replace("_", "-")
    return key if key in BY_NAME else ALIASES.get(key, label)


def _lookup(reference, quantity, task, weights):
    cells = reference["cells"]
    return cells.get((quantity, task, weights)) or cells.get(
        (quantity, task, canonical_weights(weights))
    )


def paper_comparisons(res, reference):
    """Rows (task, weights) of the default slice that the reference has, with the test of the
    measured runs against the reference's n, mean, std; [] for other slices."""
    if reference is None or res.key != (DEFAULT_PROTOCOL, DEFAULT_FRACTION):
        return []
    rows = []
    for task in res.tasks:
        for w in res.weights:
            ref = _lookup(reference, "score", task, w)
            values = [v * SCALE for v in res.scores(task, w)]
            if ref is None or not values:
                continue
            test = stats.t_test_from_stats(values, ref["mean"], ref["std"], ref["n"], res.test,
                                           ref["std_ddof"])  # fmt: skip
            summary = stats.summarize(values)
            epochs = stats.summarize(res.scores(task, w, "epochs_run"))
            ref_ep = _lookup(reference, "epochs", task, w) or {}
            rows.append(dict(
                task=task, weights=w, paper_mean=ref["mean"], paper_std=ref["std"],
                paper_n=ref["n"], paper_std_ddof=ref["std_ddof"], source=ref["source"],
                n=summary["n"], mean=summary["mean"], std=res.std_of(summary),
                diff=test["diff"], t=test["t"], df=test["df"], p=test["p"],
                paper_epochs_mean=ref_ep.get("mean", math.nan),
                paper_epochs_std=ref_ep.get("std", math.nan),
                epochs_mean=epochs["mean"], epochs_std=res.std_of(epochs), epochs_n=epochs["n"],
            ))  # fmt: skip
    pvals = [r["p"] for r in rows]
    adjusted = stats.holm(pvals) if res.correction == "holm" else np.asarray(pvals, np.float64)
    for row, p_adj in zip(rows, adjusted):
        row["p_adj"] = float(p_adj)
        defined = bool(np.isfinite(p_adj))
        row["consistent"] = (p_adj > res.alpha) if defined else None
        row["direction"] = int(np.sign(row["diff"])) if defined and p_adj <= res.alpha else 0
    return rows
