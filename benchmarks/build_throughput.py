"""TFDS build throughput (images/s) of the tfmedbench builders, one process vs Beam workers.

  python benchmarks/build_throughput.py drive [--drive-dir ../shared/data]
  python benchmarks/build_throughput.py chestxray14 [--n 2000] [--size 1024] [--source-mode L]
  python benchmarks/build_throughput.py chestxray14 --n 240 --source-mode RGB --config 512 \\
      --workers 1,beam1,2 --repeats 2

`drive` builds the real DRIVE set (40 images) into a temporary data_dir. `chestxray14`
generates an N-image tree in the NIH archive layout (images_001/images/...) of SIZE x SIZE PNGs
plus Data_Entry_2017_v2020.csv, then builds it. Generation is not timed. 16 distinct
chest-X-ray-like images are written round-robin (content does not change the per-image cost);
`--source-mode L` (8-bit grey, as NIH ships: the builder copies the bytes after a CRC check) or
`RGB`/`RGBA` (forces decode + grey conversion + PNG re-encode). `--config` picks the builder
config (`512`: decode, shrink, JPEG encode per image).

`--workers` lists the ways to build, alternated in one process over `--repeats` rounds (each
build into a fresh data_dir, same tree): `1` = the one-process build (no Beam); `beam1` =
Beam's DirectRunner with one worker process; `N` > 1 = the DirectRunner with N worker processes
(`direct_running_mode=multi_processing`, what `python -m datasets_tfds build --workers N`
runs). Ratios are paired against the first entry, within each round. Also printed: the CPU
seconds of this process and its children per image, which a shared machine distorts less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from PIL import Image  # noqa: E402

import datasets_tfds  # noqa: E402,F401  (registers the builders)
from benchmarks.common import environment, table  # noqa: E402
from datasets_tfds.nih_shenzhen.fake_data import chest_xray  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds():
    """User + system CPU seconds of this process and its finished, waited-for children (Beam's
    worker processes are waited for when the pipeline ends)."""
    own, children = os.times()[:2], os.times()[2:4]
    return sum(own) + sum(children)


def beam_options(way):
    if way == "1":
        return {}
    from datasets_tfds import parallel

    return {"beam_options": parallel.direct_runner_options(1 if way == "beam1" else int(way))}


def build(name, manual_dir, data_dir, way="1"):
    """(seconds, CPU seconds, examples) of download_and_prepare (statistics skipped, as a test
    build would)."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    config = tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), compute_stats=tfds.download.ComputeStatsMode.SKIP,
        **beam_options(way),
    )  # fmt: skip
    cpu, start = cpu_seconds(), time.perf_counter()
    builder.download_and_prepare(download_config=config)
    seconds = time.perf_counter() - start
    return seconds, cpu_seconds() - cpu, builder.info.splits.total_num_examples


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


def parse():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("drive", "chestxray14"))
    parser.add_argument("--drive-dir", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding DRIVE/")  # fmt: skip
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--source-mode", default="L", choices=("L", "RGB", "RGBA"))
    parser.add_argument("--config", default=None, help="builder config (default: the default)")
    parser.add_argument("--workers", default="1", help="comma-separated: 1, beam1, 2, 4, ...")
    parser.add_argument("--repeats", type=int, default=1)
    return parser.parse_args()


def main():
    args = parse()
    print(environment())
    tfds.disable_progress_bar()
    work = Path(tempfile.mkdtemp(prefix="tfmedbench_bench_"))
    ways = args.workers.split(",")
    try:
        if args.dataset == "drive":
            name, manual = "tfmedbench_drive", args.drive_dir
            detail = "real DRIVE, 584x565 RGB TIFF + 2 GIF masks per example"
        else:
            name, manual = "tfmedbench_chestxray14", work / "raw"
            manual.mkdir()
            start = time.perf_counter()
            mean_bytes = write_chestxray14_tree(manual, args.n, args.size, args.source_mode)
            print(f"generated {args.n} PNGs ({mean_bytes / 1e3:.0f} kB each) in "
                  f"{time.perf_counter() - start:.1f} s (not timed)")  # fmt: skip
            detail = f"{args.size}x{args.size} {args.source_mode} PNG, ChestX-ray14 layout"
        if args.config:
            name += f"/{args.config}"
        runs = {way: [] for way in ways}
        for round_ in range(args.repeats):
            for way in ways:
                data_dir = work / f"data_{way}_{round_}"
                runs[way].append(build(name, manual, data_dir, way))
                shutil.rmtree(data_dir, ignore_errors=True)
                seconds, cpu, n = runs[way][-1]
                print(f"# round {round_ + 1} {way}: {n} examples in {seconds:.1f} s = "
                      f"{n / seconds:.1f} images/s, {1e3 * cpu / n:.0f} ms CPU per image, load "
                      f"{os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)  # fmt: skip
        rows = []
        for way, results in runs.items():
            rates = [n / s for s, _, n in results]
            ratio = statistics.median(
                (n / s) / (n0 / s0) for (s, _, n), (s0, _, n0) in zip(results, runs[ways[0]])
            )
            rows.append([{"1": "one process (no Beam)", "beam1": "Beam, 1 worker process"}.get(
                way, f"Beam, {way} worker processes"), f"{statistics.median(rates):.1f}",
                f"{min(rates):.1f}-{max(rates):.1f}", f"{ratio:.2f}",
                f"{statistics.median(1e3 * c / n for _, c, n in results):.0f}"])  # fmt: skip
        print(f"\n{name}: {detail}; {results[0][2]} examples; {os.cpu_count()} CPUs")
        print(table(["build", "images/s (median)", "range", f"x {ways[0]} (paired)",
                     "CPU ms per image"], rows))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
