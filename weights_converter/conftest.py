"""Fixtures of the converter's tests: a private weights cache and the tiny reference ResNet."""

import pytest

from weights_converter.testing.harness import DEPTHS, WIDTH


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TFMEDBENCH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def reference():
    pytest.importorskip("torch")
    from weights_converter.testing import torch_resnet

    return torch_resnet.reference_resnet(DEPTHS, WIDTH, seed=0)
