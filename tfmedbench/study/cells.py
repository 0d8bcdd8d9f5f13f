"""One cell of a sweep: its checks, its data, its RunSpec and its store record.

Shared by the local loop (`sweep.run_sweep`) and the Ray tasks (`ray_executor`), which both
import from here (never from each other).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import traceback

from tfmedbench.errors import UserError
from tfmedbench.fileutil import sha256_file, versions
from tfmedbench.study import config as config_lib


def check_config(config, tasks_needed, labels_needed):
    """Validate what would fail every cell -- recipes of every (task, protocol) and every weights
    source -- without building data; returns {label: {"path", "sha256"}} for file weights."""
    from tfmedbench.train.spec import resolve_recipe
    from tfmedbench.train.weights import resolve_weights_path

    recipes = {}
    for task in tasks_needed:
        for protocol in config_lib.protocols_for(task, config.protocols):
            try:
                recipes[task] = resolve_recipe(task, protocol, config.overrides_for(task))
            except UserError as err:
                raise UserError(f"task {task} ({protocol}): {err}") from None
    weights_info = {}
    for label in labels_needed:
        recipe = next(iter(recipes.values()))
        try:
            path = resolve_weights_path(config.spec(label), allow_fetch=config.allow_fetch,
                                        depths=recipe.depths, width=recipe.width)  # fmt: skip
        except UserError as err:
            raise UserError(f"initialization {label!r}: {err}") from None
        if path is not None:
            weights_info[label] = {"path": os.path.abspath(path), "sha256": sha256_file(path)}
    return recipes, weights_info


def build_data(config, recipes):
    """Build each needed TFDS dataset once (from its manual dir) before the first cell."""
    from tfmedbench.data.prepare import ensure_built
    from tfmedbench.train import determinism

    # Building a dataset starts TF's runtime: choose its thread pools for the fits first.
    determinism.prepare(config.strategy, config.tpu, config.jit_compile)
    for task, recipe in recipes.items():
        name = recipe.builder + (f"/{config.data_config}" if config.data_config else "")
        ensure_built(name, data_dir=config.data_dir,
                     manual_dir=config.manual_dir_for(task), verbose=bool(config.verbose),
                     task=task)  # fmt: skip


def release_memory():
    if "keras" in sys.modules:
        try:
            sys.modules["keras"].backend.clear_session()
        except Exception:  # noqa: BLE001 - best effort between cells
            pass
    gc.collect()


def label(cell):
    extra = ""
    if cell.get("protocol", "finetune") != "finetune" or cell.get("label_fraction", 1.0) != 1.0:
        extra = f" ({cell['protocol']}, {cell['label_fraction']:g} of labels)"
    return f"{cell['task']} x {cell['weights']} x seed {cell['seed']}{extra}"


def count(summary, progress, record, cell_label):
    ok = record["status"] == "ok"
    progress.finished(record["task"], record["wall_time_s"] or 0.0, ok)
    summary["ran"] += 1
    summary["ok" if ok else "failed"] += 1
    if not ok:
        print(f"[benchmark] FAILED {cell_label}: {record['error_type']}: {record['error']}",
              file=progress.stream, flush=True)  # fmt: skip


def default_run():
    from tfmedbench.train.finetune import run

    return run


def cell_spec(config, output_dir, cell, weights_info=None):
    """The RunSpec of one cell; an interrupted run folder with a checkpoint is resumed."""
    from tfmedbench.train.rundir import RunDir
    from tfmedbench.train.spec import make_runtime, make_spec

    run_dir = config_lib.run_dir_for(output_dir, cell)
    spec_str = config.spec(cell["weights"])
    path = weights_info["path"] if weights_info else (None if spec_str == "random" else spec_str)
    resume = RunDir(run_dir).has_checkpoint()
    return make_spec(
        cell["task"], spec_str, overrides=config.overrides_for(cell["task"]) or None,
        seed=cell["seed"], data_dir=config.data_dir, manual_dir=config.manual_dir_for(cell["task"]),
        output_dir=run_dir, data_config=config.data_config, protocol=cell["protocol"], label_fraction=cell["label_fraction"],
        label_subset=config.label_subset, save_weights=config.save_weights, resume=resume,
        overwrite=not resume, allow_fetch=config.allow_fetch, weights_path=path,
        runtime=make_runtime(config.strategy, config.tpu, config.precision, config.jit_compile),
        verbose=config.verbose,
    )  # fmt: skip


def run_cell(config, output_dir, cell, run_fn, weights_info=None):
    """Run one cell; return its store record (status ok or failed, never raises except on
    KeyboardInterrupt/SystemExit)."""
    run_dir = config_lib.run_dir_for(output_dir, cell)
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    record = dict(task=cell["task"], weights=cell["weights"], seed=cell["seed"], run=cell["run"],
                  protocol=cell["protocol"], label_fraction=cell["label_fraction"],
                  weights_spec=config.spec(cell["weights"]),
                  run_dir=os.path.relpath(run_dir, output_dir))  # fmt: skip
    if weights_info:
        record["weights_sha256"] = weights_info.get("sha256")
    start = time.monotonic()
    try:
        result = run_fn(cell_spec(config, output_dir, cell, weights_info))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        text = str(err).strip()
        record.update(status="failed", error_type=type(err).__name__,
                      error=text.splitlines()[0][:500] if text else repr(err),
                      traceback="".join(traceback.format_exception(err))[-4000:],
                      wall_time_s=time.monotonic() - start, versions=versions())  # fmt: skip
        return record
    return _ok_record(record, result, start)


def _ok_record(record, result, start):
    metrics = dict(getattr(result, "metrics", None) or {})
    for key in ("task", "weights", "seed", "status", "protocol", "label_fraction"):
        metrics.pop(key, None)
    record.update(metrics)
    record["status"] = "ok"
    record.setdefault("wall_time_s", time.monotonic() - start)
    score = record.get("score")
    if score is None or not math.isfinite(float(score)):
        record.update(status="failed", error_type="NoScore",
                      error=f"the run returned no defined test score ({score!r})")  # fmt: skip
    return record
