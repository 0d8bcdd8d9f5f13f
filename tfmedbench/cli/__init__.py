"""The `tfmedbench` command line (`main` is the console script)."""

from tfmedbench.cli.main import main

__all__ = ["main"]
