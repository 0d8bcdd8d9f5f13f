"""Errors the CLI reports as one clear line (no traceback unless --debug)."""


class UserError(Exception):
    """Bad input or environment the user can fix; the message says what and how."""


class NonFiniteLossError(UserError):
    """Training produced a NaN/Inf loss; the run directory keeps what was written."""
