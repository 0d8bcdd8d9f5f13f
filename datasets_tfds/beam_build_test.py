"""Parallel builds (Apache Beam, `datasets_tfds.parallel`) equal the one-process builds.

Every builder is built from one generated tree twice: in the building process (no Beam
options) and with Beam. The Beam build must hold the same examples, byte for byte (images
still encoded), in the same order, split by split. One build runs Beam's local DirectRunner
with 2 worker processes (`direct_running_mode=multi_processing`: work items and functions are
pickled to separate Python processes, as on a cluster); the others use the in-process runner,
which still runs the pickled pipeline, in a fraction of the time.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets_tfds import parallel, testing
from datasets_tfds.chestxray14 import chestxray14_dataset_builder as chestxray14
from datasets_tfds.chestxray14 import fake_data as chestxray14_fake
from datasets_tfds.chexpert import chexpert_dataset_builder as chexpert
from datasets_tfds.chexpert import fake_data as chexpert_fake
from datasets_tfds.drive import drive_dataset_builder as drive
from datasets_tfds.drive import fake_data as drive_fake
from datasets_tfds.montgomery import fake_data as montgomery_fake
from datasets_tfds.montgomery import montgomery_dataset_builder as montgomery
from datasets_tfds.nih_shenzhen import fake_data as shenzhen_fake
from datasets_tfds.nih_shenzhen import nih_shenzhen_dataset_builder as shenzhen

beam = pytest.importorskip("apache_beam", reason="apache-beam (the [beam] extra) runs the builds")
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

# name: (builder class, config, tree writer)
BUILDERS = {
    "shenzhen": (shenzhen.TfmedbenchNihShenzhen, "paper_split",
                 lambda root: shenzhen_fake.write_paper_lists(
                     root, shenzhen_fake.write_tree(root, 20, size=(12, 10)),
                     {"train": 12, "validation": 3, "test": 5})),
    "chestxray14": (chestxray14.TfmedbenchChestxray14, "default",
                    lambda root: chestxray14_fake.write_tree(root, 10)),
    "chexpert": (chexpert.TfmedbenchChexpert, "256",
                 lambda root: chexpert_fake.write_tree(root, 20, size=(300, 260))),
    "montgomery": (montgomery.TfmedbenchMontgomery, "default",
                   lambda root: montgomery_fake.write_tree(root, 10)),
    "drive": (drive.TfmedbenchDrive, None, lambda root: drive_fake.write_tree(root, 6, 2)),
}  # fmt: skip


def _dicom_builders():
    pytest.importorskip("pydicom", reason="pydicom (tfmedbench[dicom]) writes the DICOMs")
    from datasets_tfds.siim_pneumothorax import fake_data as siim_fake
    from datasets_tfds.siim_pneumothorax import siim_pneumothorax_dataset_builder as siim

    return {
        "siim": (siim.TfmedbenchSiimPneumothorax, "256",
                 lambda root: siim_fake.write_tree(root, size=(300, 260))),
    }  # fmt: skip


def _encoded_examples(builder):
    """{split: [example with its image features still encoded]} in the stored order."""
    skip = {k: tfds.decode.SkipDecoding() for k, f in builder.info.features.items()
            if isinstance(f, tfds.features.Image)}  # fmt: skip
    return {
        split: list(tfds.as_numpy(builder.as_dataset(split=split, decoders=skip)))
        for split in builder.info.splits
    }


def _assert_same(one_process, parallel_build):
    assert sorted(one_process) == sorted(parallel_build) == ["test", "train", "validation"]
    for split, expected in one_process.items():
        got = parallel_build[split]
        assert len(got) == len(expected) > 0, split
        for a, b in zip(expected, got):
            assert a.keys() == b.keys()
            for name in a:
                np.testing.assert_array_equal(a[name], b[name], err_msg=f"{split} {name}")


def _compare(case, tmp_path, beam_options):
    cls, config, write = case
    write(tmp_path / "raw")
    one = testing.build(cls, tmp_path / "raw", tmp_path / "one", config)
    assert not parallel.requested(one)
    many = testing.build(cls, tmp_path / "raw", tmp_path / "beam", config, beam_options=beam_options)
    _assert_same(_encoded_examples(one), _encoded_examples(many))
    return many


def test_two_worker_processes_build_the_same_examples(tmp_path):
    """DirectRunner with 2 worker processes, on a reduced config (the images are shrunk and
    encoded in the workers)."""
    case = (shenzhen.TfmedbenchNihShenzhen, "256",
            lambda root: shenzhen_fake.write_tree(root, 20, size=(300, 260)))  # fmt: skip
    many = _compare(case, tmp_path, parallel.direct_runner_options(2))
    assert many.info.splits.total_num_examples == 20


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_beam_builds_the_same_examples(name, tmp_path):
    _compare(BUILDERS[name], tmp_path, beam.options.pipeline_options.PipelineOptions([]))


def test_beam_builds_the_same_dicom_examples(tmp_path):
    # RSNA-PE's Beam path (one work item per study, its `beam` config's) has its own test in
    # rsna_pe_dataset_builder_test.py; Beam options select it for every config.
    _compare(_dicom_builders()["siim"], tmp_path, beam.options.pipeline_options.PipelineOptions([]))


def test_cli_workers_option_needs_at_least_one(tmp_path, capsys):
    from datasets_tfds.__main__ import main

    assert main(["build", "tfmedbench_drive", "--manual_dir", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers 0: must be at least 1" in capsys.readouterr().err
