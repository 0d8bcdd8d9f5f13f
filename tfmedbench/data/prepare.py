"""Find, and if asked build, a task's TFDS dataset."""

from __future__ import annotations

import os

from tfmedbench.errors import UserError


def tfds_module():
    import tensorflow_datasets as tfds

    import datasets_tfds  # noqa: F401  (registers the builders)

    return tfds


def default_data_dir():
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def check_builder_config(builder_name):
    """A `NAME/CONFIG` whose config the builder lacks -> one-line UserError (no TF op runs)."""
    tfds = tfds_module()
    name, _, config = str(builder_name).partition("/")
    if config:
        known = [c.name for c in tfds.builder_cls(name).BUILDER_CONFIGS]
        if config not in known:
            raise UserError(f"--data-config {config!r}: {name} has the configs "
                            f"{', '.join(known) or '(none)'}")  # fmt: skip
    return tfds


def get_builder(builder_name, data_dir=None):
    tfds = check_builder_config(builder_name)
    return tfds.builder(builder_name, data_dir=data_dir or default_data_dir())


def is_built(builder):
    return builder.is_prepared()


def build(builder_name, manual_dir, data_dir=None, verbose=True):
    """Prepare the dataset from the raw files in `manual_dir` (TFDS shows progress bars)."""
    tfds = tfds_module()
    if not manual_dir or not os.path.isdir(manual_dir):
        raise UserError(
            f"--manual-dir {manual_dir!r} is not a folder; point it at the raw files of "
            f"{builder_name} (see `tfmedbench data info TASK` for the expected tree)"
        )
    builder = get_builder(builder_name, data_dir)
    config = tfds.download.DownloadConfig(manual_dir=os.path.abspath(manual_dir))
    if not verbose:
        tfds.disable_progress_bar()
    builder.download_and_prepare(download_config=config)
    return builder


def ensure_built(builder_name, data_dir=None, manual_dir=None, verbose=True, task="<TASK>"):
    """The prepared builder; builds it from `manual_dir` when given, else says how to."""
    builder = get_builder(builder_name, data_dir)
    if is_built(builder):
        return builder
    if manual_dir:
        return build(builder_name, manual_dir, data_dir, verbose=verbose)
    where = data_dir or default_data_dir()
    raise UserError(
        f"dataset {builder_name} is not built in {where}; build it from the raw files with "
        f"`tfmedbench data build {task} --manual-dir DIR --data-dir {where}` or pass "
        f"--manual-dir to fit (expected tree: `tfmedbench data info {task}`)"
    )
