"""A/B of the reduced-resolution configs on a task's result, at fixture scale.

  python benchmarks/resized_ab.py [--n 120] [--size 1024] [--seeds 3] [--epochs 6] [--image-size 64]

One generated NIH Shenzhen tree (N learnable chest-X-ray-like images of SIZE px: "tuberculosis"
images carry bright blotches) is built as the full-resolution `default` config and as `512`
and `256`; TXC (the paper's recipe: RandomResizedCrop, flip, rotation; TenCrop test) is
fine-tuned from random initialisation with a small ResNet (depths 1,1,1,1, width 16) at
IMAGE_SIZE px for each config and seed, the seeds paired across configs (same initial weights
and draws). Prints the test AUC per run, the mean and SD per config, and the paired difference
to the full-resolution config. What it can show: whether the configs change a result beyond
seed noise on data where fine detail is not needed; not the effect on real radiographs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import environment, table  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--configs", default="default,512,256")
    return p.parse_args()


def main():
    args = parse()
    print(environment())
    from datasets_tfds.nih_shenzhen.fake_data import write_tree
    from tfmedbench.train import fit

    configs = args.configs.split(",")
    recipe = dict(epochs=args.epochs, image_size=args.image_size, resize_size=args.image_size * 8 // 7,
                  batch_size=8, depths=(1, 1, 1, 1), width=16, patience=args.epochs)  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="tfmedbench-ab-")
    scores = {c: [] for c in configs}
    try:
        write_tree(os.path.join(tmp, "raw"), n_images=args.n, size=args.size, odd_files=False)
        for seed in range(args.seeds):
            for config in configs:
                result = fit("TXC", data_dir=os.path.join(tmp, "tfds"),
                             manual_dir=os.path.join(tmp, "raw"),
                             output_dir=os.path.join(tmp, f"run_{config}_{seed}"), seed=seed,
                             data_config=None if config == "default" else config,
                             overrides=recipe, verbose=0, save_weights="none")  # fmt: skip
                metrics = json.loads((result.run_dir / "metrics.json").read_text())
                scores[config].append(metrics["score"])
                print(f"# seed {seed} {config}: test AUC {metrics['score']:.4f} "
                      f"(best epoch {metrics['best_epoch']})", file=sys.stderr, flush=True)
        base = scores[configs[0]]
        rows = []
        for config, values in scores.items():
            diffs = [v - b for v, b in zip(values, base)]
            rows.append([config, " ".join(f"{v:.3f}" for v in values),
                         f"{statistics.mean(values):.3f}",
                         f"{statistics.stdev(values):.3f}" if len(values) > 1 else "-",
                         f"{statistics.mean(diffs):+.3f}"])  # fmt: skip
        print(f"\nTXC on {args.n} generated {args.size} px radiographs, {args.epochs} epochs at "
              f"{args.image_size} px, ResNet depths 1,1,1,1 width 16, {args.seeds} paired seeds")
        print(table(["config", "test AUC per seed", "mean", "SD", f"paired diff vs {configs[0]}"],
                    rows))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
