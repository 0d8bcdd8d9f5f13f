"""The whole benchmark as one resumable sweep: every cell (task, weights, protocol, label
fraction, seed), run in-process one after another.

Layout of a sweep directory:

    DIR/sweep.json        the sweep's settings (tasks, initializations, runs, overrides, ...)
    DIR/results.jsonl     the results store, one record per finished run (see store)
    DIR/runs/TASK/WEIGHTS/seed-N/   each run's directory as written by `fit`

The store is the source of truth. A cell whose key is in the store is never run again (failed
cells only with `retry_failed`). A run directory without a record is an interrupted run: it is
resumed from its last checkpointed epoch when its configuration matches, else replaced.
Everything is validated -- settings, recipes, every weights file -- before anything is written.
"""

from __future__ import annotations

import os

from tfmedbench.errors import UserError
from tfmedbench.study import config as config_lib
from tfmedbench.study.cells import (build_data, check_config, count, default_run, label,
                                    release_memory, run_cell)
from tfmedbench.study.progress import Progress
from tfmedbench.study.store import ResultsStore, record_key


def _todo(config, store):
    resolved = store.resolved()
    return [
        cell for cell in config.cells()
        if (rec := resolved.get(record_key(cell))) is None
        or (config.retry_failed and rec.get("status") != "ok")
    ]  # fmt: skip


def run_sweep(config, output_dir, run_fn=None, check_data=True, stream=None, stop_after=None):
    """Run every unfinished cell of `config` into `output_dir`; return a summary dict.

    run_fn: the per-cell training call, run_fn(spec) -> FitResult (default `train.fit.run`).
    check_data: validate recipes and weights and build the datasets first (tests of the store
      logic pass False and a stand-in run_fn).
    stop_after: stop after this many cells (for tests and smoke runs); None = all.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    weights_info, recipes = {}, {}
    if check_data:  # before anything is written
        recipes, weights_info = check_config(config, config.tasks, config.labels)
    store = ResultsStore(output_dir)
    with store:
        merged = config_lib.reconcile(output_dir, config)  # refuses changed settings
        config_lib.write_sweep_json(output_dir, merged)
        todo, total = _todo(config, store), len(config.cells())
        progress = Progress(total, total - len(todo), stream=stream)
        summary = dict(total=total, skipped=total - len(todo), ran=0, ok=0, failed=0)
        if config.executor == "ray":  # the cells as Ray tasks; this process stays the one writer
            from tfmedbench.study import ray_executor

            return ray_executor.run(config, output_dir, todo[:stop_after], store, progress, summary,
                                    weights_info, recipes if check_data else None, run_fn)  # fmt: skip
        if todo and check_data:
            build_data(config, {c["task"]: recipes[c["task"]] for c in todo})
        run_fn = run_fn or default_run()
        for index, cell in enumerate(todo[:stop_after]):
            progress.show([c["task"] for c in todo[index:]], current=label(cell))
            record = run_cell(config, output_dir, cell, run_fn, weights_info.get(cell["weights"]))
            store.append(record)
            count(summary, progress, record, label(cell))
            release_memory()
        progress.show([])
        return summary


def load_results(output_dir, status="ok"):
    """Resolved records of a sweep directory (status None = all), in sweep order."""
    store = ResultsStore(output_dir)
    if not os.path.exists(store.path):
        raise UserError(f"{output_dir} has no results store ({os.path.basename(store.path)})")
    return [r for r in store.resolved().values() if status is None or r.get("status") == status]
