import os
import pathlib

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def shared_data_dir():
    env = os.environ.get("TFMEDBENCH_SHARED_DATA")
    return pathlib.Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data():
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set TFMEDBENCH_SHARED_DATA)")
    return path


# Tiny same-topology configuration for fast training tests.
TINY = {"depths": (1, 1, 1, 1), "width": 8}
