"""Converter errors: user-fixable, reported by the CLI as one clear message."""

from tfmedbench.errors import UserError


class ConversionError(UserError):
    """A checkpoint does not match its format (keys, shapes) or cannot be read safely."""


class UnsafeFileError(ConversionError):
    """The file asks the unpickler for something outside the allow-list; nothing was executed."""
