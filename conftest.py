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


# The longest tests (measured: 2 cores, `--durations`), started first on each of the two
# workers. `--dist worksteal` (pyproject addopts) gives each worker one contiguous half of the
# collection and lets an idle worker take queued tests from a busy one, so a long test that
# starts late is what decides the wall time: the Ray kill test (~3-5 min) opens the first half,
# the sweep tests that share the reference sweep (a module fixture, ~2 min) open the second
# half, in one worker, where a steal (from the end of a queue) cannot split them; the next
# longest (~45-65 s each) follow, so that none is left for the end.
FIRST_HALF = (
    "tfmedbench/study/ray_executor_test.py::test_ray_sweep_equals_local_and_survives_kills",
    "tfmedbench/cli/cli_test.py::test_demo_runs_full_resnet50_and_prints_auc",
    "tfmedbench/train/determinism_test.py::test_fresh_processes_agree_whether_the_dataset_was_built_in_process_or_found",
)
SECOND_HALF = (
    "tfmedbench/study/sweep_test.py::test_reference_sweep_completes_with_progress",
    "tfmedbench/study/sweep_test.py::test_sigkill_at_a_random_point_then_rerun_gives_identical_results",
    "tfmedbench/study/sweep_test.py::test_report_of_the_fixture_sweep",
    "tfmedbench/train/fit_real_drive_test.py::test_fit_vfs_on_real_drive_reduced_resolution",
    "tfmedbench/train/finetune_test.py::test_resume_after_a_kill_equals_the_uninterrupted_run",
)


def _in_order(items, names):
    """The collected `items` named in `names`, in that order (longest first)."""
    return sorted((i for i in items if i.nodeid in names), key=lambda i: names.index(i.nodeid))


def pytest_collection_modifyitems(config, items):
    first, second = _in_order(items, FIRST_HALF), _in_order(items, SECOND_HALF)
    rest = [i for i in items if i.nodeid not in FIRST_HALF + SECOND_HALF]
    half = max(0, len(items) // 2 - len(first))  # worksteal sends the first len // 2 to worker 1
    items[:] = first + rest[:half] + second + rest[half:]
