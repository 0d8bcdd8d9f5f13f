"""Shared pieces of the builders' tests: fixture trees for DatasetBuilderTestCase, and builds."""

import shutil
import tempfile

import tensorflow_datasets as tfds


class GeneratedTree:
    """Mixin (before `tfds.testing.DatasetBuilderTestCase`): writes the official-layout fixture
    tree with `WRITE_TREE(root)` into a temporary folder, which becomes the manual dir."""

    WRITE_TREE = None

    @classmethod
    def setUpClass(cls):
        cls._tree = tempfile.mkdtemp()
        cls.WRITE_TREE(cls._tree)
        cls.EXAMPLE_DIR = cls._tree
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls._tree, ignore_errors=True)


def build(builder_cls, manual_dir, data_dir, config=None, **download_options):
    """Prepare `builder_cls` from `manual_dir` into `data_dir`; returns the builder."""
    kwargs = {"data_dir": str(data_dir)}
    if config is not None:
        kwargs["config"] = config
    builder = builder_cls(**kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir), **download_options)
    )
    return builder
