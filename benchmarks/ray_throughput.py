"""Study throughput of `tfmedbench benchmark`: --executor local vs --executor ray with 1 and 2
workers, and Ray's overhead per cell.

  python benchmarks/ray_throughput.py [--runs 4] [--reps 2] [--tasks TXC]

A fixture sweep (a generated NIH Shenzhen tree in NLM's layout, 40 images; initializations
`random` and a tiny weights file; `--runs` seeds; tiny models: depths 1,1,1,1, width 8, 32 px,
1 epoch) runs through the real CLI, once per variant and repetition, alternating the variants
(rep 1: local ray-1 ray-2, rep 2: ...). Ray is started by each driver on this machine (no
--address), so its start is part of the measured time: `ray-1` gives each cell 2 CPUs (one cell
at a time, like local), `ray-2` one CPU (two at once). The dataset is built once, untimed.

Reported per variant (medians): wall time of the whole command, runs per hour, start-up (command
start to the first progress line: TF import, checks, Ray start and the node probe), time per cell
after that, and the cells' own `wall_time_s` (run_cell's clock, which a worker starts after
importing TF). Overhead per cell = ray-1's time per cell - local's (same one-at-a-time order:
the difference is the fresh worker process, its TF import and Ray's scheduling).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import environment, median, table  # noqa: E402

TINY = ["--set", "depths=1,1,1,1", "--set", "width=8", "--set", "test_time=resize", "--epochs", "1",
        "--image-size", "32", "--batch-size", "4", "-q"]  # fmt: skip
VARIANTS = {
    "local": ["--executor", "local"],
    "ray-1": ["--executor", "ray", "--cpus-per-run", "2"],  # 2 CPUs per cell on a 2-CPU machine
    "ray-2": ["--executor", "ray", "--cpus-per-run", "1"],
}


def env(ray_tmp):
    e = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", TF_CPP_MIN_LOG_LEVEL="2", RAY_TMPDIR=ray_tmp,
             RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # fmt: skip
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def make_fixture(root):
    import keras

    from datasets_tfds.nih_shenzhen.fake_data import write_tree
    from tfmedbench.models import resnet50

    write_tree(root / "raw_txc", n_images=40, size=64, seed=0)
    keras.utils.set_random_seed(100)
    weights = root / "tiny_a.weights.h5"
    resnet50(include_top=False, depths=(1, 1, 1, 1), width=8).save_weights(weights)
    return weights


def command(root, weights, out, tasks, runs, extra):
    return [sys.executable, "-m", "tfmedbench.cli", "benchmark", "--tasks", tasks,
            "--weights", f"random,a={weights}", "--runs", str(runs), "--baseline", "a",
            "--output", str(out), "--data-dir", str(root / "tfds"),
            "--manual-dir", f"TXC={root / 'raw_txc'}", *TINY, *extra]  # fmt: skip


def timed(cmd, e):
    """(wall s, start-up s, cells-phase s): start-up ends at the first progress line."""
    start = time.monotonic()
    ready = None
    proc = subprocess.Popen(cmd, env=e, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    tail = []
    for line in proc.stderr:
        if ready is None and line.startswith("[benchmark] ["):
            ready = time.monotonic()
        tail = (tail + [line])[-20:]
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(tail)}")
    end = time.monotonic()
    return end - start, ready - start, end - ready


def run_variant(name, root, weights, args, ray_tmp):
    out = root / f"out-{name}-{time.monotonic_ns()}"
    wall, startup, cells_s = timed(command(root, weights, out, args.tasks, args.runs, VARIANTS[name]),
                                   env(ray_tmp))  # fmt: skip
    with open(out / "results.jsonl") as fh:
        recs = [json.loads(line) for line in fh]
    assert len(recs) == args.cells and all(r["status"] == "ok" for r in recs), recs
    scores = {(r["task"], r["weights"], r["seed"]): r["score"] for r in recs}
    shutil.rmtree(out)
    return dict(wall=wall, startup=startup, per_cell=cells_s / args.cells,
                in_cell=statistics.mean(r["wall_time_s"] for r in recs), scores=scores)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="seeds per (task, initialization)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--tasks", default="TXC")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    args.cells = len(args.tasks.split(",")) * 2 * args.runs
    variants = args.variants.split(",")
    print(environment())
    root = Path(tempfile.mkdtemp(prefix="ray-throughput-"))
    ray_tmp = tempfile.mkdtemp(prefix="rtp-")
    try:
        weights = make_fixture(root)
        build = ["data", "build", "TXC", "--manual-dir", str(root / "raw_txc"), "--data-dir", str(root / "tfds")]
        subprocess.run([sys.executable, "-m", "tfmedbench.cli", *build], env=env(ray_tmp), cwd=REPO,
                       check=True, capture_output=True)  # fmt: skip
        results = {name: [] for name in variants}
        for rep in range(args.reps):
            for name in variants:
                results[name].append(run_variant(name, root, weights, args, ray_tmp))
                r = results[name][-1]
                print(f"rep {rep + 1} {name}: wall {r['wall']:.1f} s, start-up {r['startup']:.1f} s, "
                      f"{r['per_cell']:.1f} s/cell after it, in-cell {r['in_cell']:.1f} s", flush=True)
        report(results, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def report(results, args):
    names = list(results)
    same = all(r["scores"] == results[names[0]][0]["scores"] for n in names for r in results[n])
    rows = []
    for name in names:
        m = {k: median([r[k] for r in results[name]]) for k in ("wall", "startup", "per_cell", "in_cell")}
        rows.append([name, f"{m['wall']:.1f}", f"{3600 * args.cells / m['wall']:.0f}", f"{m['startup']:.1f}",
                     f"{m['per_cell']:.2f}", f"{m['in_cell']:.2f}"])  # fmt: skip
    print(f"\n{args.cells} cells ({args.tasks} x 2 initializations x {args.runs} runs), "
          f"{args.reps} repetitions, medians; scores identical across variants: {same}\n")
    print(table(["variant", "wall s", "runs/hour", "start-up s", "s/cell after start-up",
                 "in-cell s (wall_time_s)"], rows))  # fmt: skip
    med = {n: median([r["per_cell"] for r in results[n]]) for n in names}
    if "local" in med and "ray-1" in med:
        start = median([r["startup"] for r in results["ray-1"]]) - median([r["startup"] for r in results["local"]])
        print(f"\nRay overhead per cell (ray-1 - local, one cell at a time): {med['ray-1'] - med['local']:.2f} s; "
              f"one-time start (Ray instance + probe): {start:.1f} s")
    if "ray-1" in med and "ray-2" in med:
        print(f"2 workers vs 1: {med['ray-1'] / med['ray-2']:.2f}x cells per second after start-up")


if __name__ == "__main__":
    main()
