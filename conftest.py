"""Test-session environment and fixtures for every package's tests (tests live beside the code)."""

import os

# albumentations calls the network at import unless told not to; TF's C++ logs are noise here.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def _shared_data_dir():
    import pathlib

    env = os.environ.get("TFMEDBENCH_SHARED_DATA")
    return pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """The real data (`../shared/data`); the test skips, saying why, when it is absent."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set TFMEDBENCH_SHARED_DATA)")
    return path
