"""The one error the commands raise for bad input."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """Bad input, said in one line with how to fix it; exits with status 2."""
