"""The package's own errors: `datasets_tfds` imports nothing from the training package.

A caller that wants one clean line instead of a traceback catches `DatasetError` (the tfmedbench
CLI does, and `python -m datasets_tfds build` does).
"""


class DatasetError(Exception):
    """A dataset cannot be built as asked; the message says what is wrong and how to fix it."""


class ManualDataError(DatasetError):
    """The manual data of a builder is missing, incomplete or corrupt; the message says what."""
