"""`python -m datasets_tfds`: list, explain and build this package's datasets.

  python -m datasets_tfds list
  python -m datasets_tfds info tfmedbench_drive
  python -m datasets_tfds build tfmedbench_nih_shenzhen/paper_split --manual_dir DIR [--data_dir D]
  python -m datasets_tfds build tfmedbench_chestxray14/512 --manual_dir DIR --workers 16

The same builds as `tfds build --imports datasets_tfds NAME --manual_dir DIR`, without its
dependency on apache-beam: the `tfds` command of TFDS 4.9 imports apache-beam at start-up
(tensorflow/datasets#5463), this one only when a `beam` config or `--workers` > 1 is used.
`--workers N` builds in parallel with Apache Beam's local DirectRunner and N worker processes
(datasets_tfds.parallel; the same examples as a one-process build). Errors of the data
(`DatasetError`) print as one `error: ...` message with exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser():
    parser = argparse.ArgumentParser(prog="python -m datasets_tfds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the builders and their configs")
    info = commands.add_parser("info", help="a builder's manual-download instructions")
    info.add_argument("name", help="builder name, e.g. tfmedbench_drive")
    build = commands.add_parser("build", help="build NAME[/CONFIG] from the files in --manual_dir")
    build.add_argument("name", help="NAME or NAME/CONFIG, e.g. tfmedbench_nih_shenzhen/paper_split")
    build.add_argument("--manual_dir", "--manual-dir", required=True)
    build.add_argument("--data_dir", "--data-dir", default=None,
                       help="default: $TFDS_DATA_DIR or ~/tensorflow_datasets")  # fmt: skip
    build.add_argument("--workers", type=int, default=1,
                       help="> 1: build with Apache Beam's DirectRunner and this many worker "
                       "processes (pip install apache-beam)")  # fmt: skip
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow_datasets as tfds

    import datasets_tfds

    try:
        if args.command == "list":
            for name in datasets_tfds.BUILDERS:
                configs = [c.name for c in tfds.builder_cls(name).BUILDER_CONFIGS]
                print(f"{name:30} {', '.join(configs) if configs else '-'}")
        elif args.command == "info":
            print(_builder_cls(tfds, args.name).MANUAL_DOWNLOAD_INSTRUCTIONS)
        else:
            _build(tfds, args)
    except datasets_tfds.DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _builder_cls(tfds, name):
    import datasets_tfds

    if name.split("/")[0] not in datasets_tfds.BUILDERS:
        raise datasets_tfds.DatasetError(
            f"unknown builder {name!r}; choose one of {', '.join(datasets_tfds.BUILDERS)}"
        )
    return tfds.builder_cls(name.split("/")[0])


def _build(tfds, args):
    import datasets_tfds

    cls = _builder_cls(tfds, args.name)
    config = args.name.split("/")[1] if "/" in args.name else None
    configs = [c.name for c in cls.BUILDER_CONFIGS]
    if config is not None and config not in configs:
        raise datasets_tfds.DatasetError(
            f"{cls.name} has no config {config!r}; choose one of {', '.join(configs) or 'none'}"
        )
    if args.workers < 1:
        raise datasets_tfds.DatasetError(f"--workers {args.workers}: must be at least 1")
    options = {}
    if args.workers > 1:
        from datasets_tfds import parallel

        options["beam_options"] = parallel.direct_runner_options(args.workers)
    builder = cls(config=config, data_dir=args.data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=os.path.abspath(args.manual_dir), **options
        )
    )
    for split, info in builder.info.splits.items():
        print(f"{builder.info.full_name} {split}: {info.num_examples} examples")


if __name__ == "__main__":
    sys.exit(main())
