"""Peak resident memory (RSS) of `fit` per task, full-size model, one epoch.

  python benchmarks/memory.py                          # all 7 tasks, batch 4 (fast)
  python benchmarks/memory.py --tasks TXC,LXS --batch default   # each recipe's own batch size

Each task runs in a fresh process: its builder's official-layout fixture tree (the builders' own
fake-data writers, `datasets_tfds.<name>.fake_data`, sized so the train split holds at least two
batches) is built with TFDS, then
`tfmedbench.train.finetune(task, overrides={"epochs": 1, "batch_size": B})` runs with the recipe's
image size, the full ResNet-50 / U-Net and fit's device defaults. The child reports
`ru_maxrss` (peak RSS, the whole run: data build, model, training, TenCrop test). Fixture
generation and the TFDS build happen in the same process, so the number is an upper bound on
training's own peak; `--batch default` needs the memory the recipe implies (ECC: 576 px x 32).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.common import environment, table

# task -> (datasets_tfds module, fake_data.write_tree kwargs giving a train split of >= `batch`)
FIXTURES = {
    "DXC14": ("chestxray14", lambda b: {"n_patients": max(12, 2 * b)}),
    "DXC5": ("chexpert", lambda b: {"n_train_patients": max(20, 3 * b)}),
    "TXC": ("nih_shenzhen", lambda b: {"n_images": 2 * max(10, 2 * b), "size": (12, 10)}),
    "LXS": ("montgomery", lambda b: {"n_per_class": max(10, 2 * b)}),
    "VFS": ("drive", lambda b: {"n_train": max(6, 3 * b), "n_test": 2}),
    "PXS": ("siim_pneumothorax", lambda b: {}),
    "ECC": ("rsna_pe", lambda b: {}),
}

CHILD = r"""
import importlib, json, os, resource, sys, tempfile, time
task, batch = sys.argv[1], sys.argv[2]
from tfmedbench.tasks import get_recipe
from tfmedbench.train import fit
sys.path.insert(0, {repo!r})
from benchmarks.memory import FIXTURES
recipe = get_recipe(task)
b = recipe.batch_size if batch == "default" else int(batch)
module, kwargs = FIXTURES[task]
fake_data = importlib.import_module(f"datasets_tfds.{{module}}.fake_data")
tmp = tempfile.mkdtemp(prefix="tfmedbench-mem-")
fake_data.write_tree(os.path.join(tmp, "raw"), **kwargs(b))
from tfmedbench.data import prepare
builder = prepare.build(recipe.builder, os.path.join(tmp, "raw"), os.path.join(tmp, "tfds"), verbose=False)
n_train = builder.info.splits["train"].num_examples
b = min(b, n_train)
t0 = time.time()
res = fit(task, data_dir=os.path.join(tmp, "tfds"), output_dir=os.path.join(tmp, "run"),
          overrides={{"epochs": 1, "batch_size": b}}, verbose=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"task": task, "batch": b, "n_train": n_train, "image_size": recipe.image_size,
                  "peak_rss_mib": round(peak), "fit_s": round(time.time() - t0, 1),
                  "settings": res.metrics["settings"]}}))
"""


def settings_summary(settings):
    """The table's settings column from fit's recorded runtime settings."""
    return (f"{settings['precision']}, jit={settings['jit_compile']}, "
            f"input={settings['input_pipeline']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", default=",".join(FIXTURES))
    p.add_argument("--batch", default="4", help="an int, or 'default' for each recipe's own")
    args = p.parse_args()
    print(environment())
    rows = []
    for task in [t for t in args.tasks.split(",") if t]:
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(repo=REPO), task, args.batch],
            capture_output=True, text=True, cwd=REPO, check=False,
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            print(f"# {task} failed (rc {out.returncode}):\n{out.stderr[-2000:]}", file=sys.stderr)
            rows.append([task, "-", "-", "-", "failed", "-"])
            continue
        r = json.loads(lines[-1])
        s = r["settings"]  # fit's metrics.json "settings" (train.runtime.Settings)
        print(f"# {task}: {r} ({time.time() - t0:.0f}s)", file=sys.stderr)
        rows.append([task, r["image_size"], r["batch"], settings_summary(s), r["peak_rss_mib"],
                     r["fit_s"]])  # fmt: skip
    print(table(["task", "image size", "batch", "settings", "peak RSS (MiB)", "fit s"], rows))


if __name__ == "__main__":
    main()
