"""TFDS build throughput (images/s) of the tfmedbench builders.

  python benchmarks/build_throughput.py drive [--drive-dir ../shared/data]
  python benchmarks/build_throughput.py chestxray14 [--n 2000] [--size 1024] [--source-mode L]

`drive` builds the real DRIVE set (40 images) into a temporary data_dir. `chestxray14`
generates an N-image tree in the NIH archive layout (images_001/images/...) of SIZE x SIZE PNGs
plus Data_Entry_2017_v2020.csv, then builds it. Generation is not timed. 16 distinct
chest-X-ray-like images are written round-robin (content does not change the per-image cost);
`--source-mode L` (8-bit grey, as NIH ships: the builder copies the bytes after a CRC check) or
`RGB`/`RGBA` (forces decode + grey conversion + PNG re-encode).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from PIL import Image  # noqa: E402

import datasets_tfds  # noqa: E402,F401  (registers the builders)
from datasets_tfds.nih_shenzhen.fake_data import chest_xray  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(name, manual_dir, data_dir):
    """Seconds taken by download_and_prepare (statistics skipped, as a test build would)."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    config = tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), compute_stats=tfds.download.ComputeStatsMode.SKIP
    )
    start = time.perf_counter()
    builder.download_and_prepare(download_config=config)
    seconds = time.perf_counter() - start
    return seconds, builder.info.splits.total_num_examples


def write_chestxray14_tree(root, n, size, mode):
    rng = np.random.default_rng(0)
    blobs = []
    for i in range(16):
        grey = chest_xray(rng, size, tb=bool(i % 2))
        image = Image.fromarray(grey, "L") if mode == "L" else Image.fromarray(grey).convert(mode)
        path = Path(root, "_tmp.png")
        image.save(path)
        blobs.append(path.read_bytes())
        path.unlink()
    rows = ["Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
            "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"]  # fmt: skip
    per_archive = -(-n // 12)
    for i in range(n):
        patient, follow_up = 1 + i // 3, i % 3
        name = f"{patient:08d}_{follow_up:03d}.png"
        folder = Path(root, f"images_{1 + i // per_archive:03d}", "images")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(blobs[i % len(blobs)])
        finding = ("No Finding", "Effusion", "Atelectasis|Mass")[i % 3]
        rows.append(f"{name},{finding},{follow_up},{patient},50,M,PA,{size},{size},0.1,0.1\n")
    Path(root, "Data_Entry_2017_v2020.csv").write_text("".join(rows))
    return sum(len(b) for b in blobs) / len(blobs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("drive", "chestxray14"))
    parser.add_argument("--drive-dir", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding DRIVE/")  # fmt: skip
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--source-mode", default="L", choices=("L", "RGB", "RGBA"))
    args = parser.parse_args()
    tfds.disable_progress_bar()
    work = Path(tempfile.mkdtemp(prefix="tfmedbench_bench_"))
    try:
        if args.dataset == "drive":
            seconds, n = build("tfmedbench_drive", args.drive_dir, work / "data")
            detail = "real DRIVE, 584x565 RGB TIFF + 2 GIF masks per example"
        else:
            raw = work / "raw"
            raw.mkdir()
            start = time.perf_counter()
            mean_bytes = write_chestxray14_tree(raw, args.n, args.size, args.source_mode)
            print(f"generated {args.n} PNGs ({mean_bytes / 1e3:.0f} kB each) in "
                  f"{time.perf_counter() - start:.1f} s (not timed)")  # fmt: skip
            seconds, n = build("tfmedbench_chestxray14", raw, work / "data")
            detail = f"{args.size}x{args.size} {args.source_mode} PNG, ChestX-ray14 layout"
        print(f"{args.dataset}: {n} examples in {seconds:.1f} s = {n / seconds:.1f} images/s "
              f"({detail}; {os.cpu_count()} CPUs)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
