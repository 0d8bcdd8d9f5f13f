"""Shared test harness of tfmedbench (importable by tests, benchmarks and helpers)."""

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]

# Tiny same-topology backbone for fast training tests.
TINY_BACKBONE = {"depths": (1, 1, 1, 1), "width": 8}


def shared_data_dir():
    """The real data beside the checkout (`../shared/data`) or `$TFMEDBENCH_SHARED_DATA`."""
    env = os.environ.get("TFMEDBENCH_SHARED_DATA")
    return pathlib.Path(env) if env else REPO.parent / "shared" / "data"


def run_cli(args, capsys):
    """Run `tfmedbench ARGS` in-process; (exit code, stdout, stderr) captured by pytest's capsys."""
    from tfmedbench.cli import main

    code = 0
    try:
        main(args)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
