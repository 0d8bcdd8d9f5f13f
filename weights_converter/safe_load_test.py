"""Crafted malicious files are refused before anything in them runs."""

import os
import pickle

import pytest
import torch

from weights_converter import readers
from weights_converter.errors import UnsafeFileError
from weights_converter.safe_load import restricted_pickle_load, torch_load
from weights_converter.testing import writers
from weights_converter.testing.harness import DEPTHS, WIDTH


class Payload:
    """On unpickling, a naive loader would call os.system(...) and create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


def _sanity_payload_really_runs(tmp_path):
    """The payload is live: plain pickle.loads executes it (so the refusals below mean something)."""
    marker = tmp_path / "sanity"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_payload_is_live(tmp_path):
    _sanity_payload_really_runs(tmp_path)


@pytest.mark.parametrize("payload", [Payload, EvalPayload])
def test_malicious_torch_file_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    torch.save({"epoch": 1, "arch": payload(marker), "state_dict": {"x": torch.zeros(1)}}, path)
    with pytest.raises(UnsafeFileError, match=r"refused to load.*'(posix\.system|eval)'.*nothing from the file was executed"):
        torch_load(path)
    with pytest.raises(UnsafeFileError):
        readers.read(path, None, DEPTHS, WIDTH)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [Payload, EvalPayload])
def test_malicious_pickle_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "pretrain_res50x1.pkl")
    with open(path, "wb") as handle:
        pickle.dump({"experiment_state": payload(marker), "step": 1}, handle)
    with pytest.raises(UnsafeFileError, match=r"'(posix\.system|builtins\.eval)'"):
        restricted_pickle_load(path)
    with pytest.raises(UnsafeFileError):
        readers.read(path, "byol", DEPTHS, WIDTH)
    assert not marker.exists()


def test_lookalike_haiku_global_refused(tmp_path):
    raw = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x1ahaiku._src.data_structures\x8c\x08to_jaxpr\x93."
    path = tmp_path / "x.pkl"
    path.write_bytes(raw)
    with pytest.raises(UnsafeFileError, match="haiku._src.data_structures.to_jaxpr"):
        restricted_pickle_load(str(path))


def test_allow_list_admits_real_release_extras(reference, tmp_path):
    path = str(tmp_path / "PIRL.pth")
    writers.write_pycontrast(reference, path, pirl=True)  # carries an argparse.Namespace
    assert torch_load(path)["opt"].method == "PIRL"
    byol = str(tmp_path / "pretrain_res50x1.pkl")
    writers.write_byol(reference, byol)
    state = restricted_pickle_load(byol)["experiment_state"]
    assert type(state.online_params) is dict  # Haiku containers rebuilt as plain dicts
    assert state.opt_state.__class__.__name__ == "LarsState"
