"""Which handler ids a client may choose.

A handler id becomes a path segment (``/handlers/{id}``, ``/events/{id}``), a
row key in every store, and a name in logs.  An id with a ``/`` or a newline
made a run that no URL could reach; a NUL made PostgreSQL fail (a 500).  So a
chosen id is checked before anything is written: 1 to 128 characters of
``A-Z a-z 0-9 . _ : -``, not starting with a dot (``.`` and ``..`` are path
tricks).  The ids the server makes fit: 10 characters of ``A-Z a-z 0-9``
drawn by ``secrets``, as llama-agents-server makes them (59 bits: a clash
with a recorded run is a conflict the server sees, and draws again).
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = [
    "HANDLER_ID_PATTERN",
    "MAX_HANDLER_ID",
    "check_handler_id",
    "new_handler_id",
    "storable",
]

MAX_HANDLER_ID = 128

HANDLER_ID_PATTERN = rf"^[A-Za-z0-9_:-][A-Za-z0-9._:-]{{0,{MAX_HANDLER_ID - 1}}}$"
"""The handler ids a client may choose, as a regular expression (also in the OpenAPI document)."""

_VALID = re.compile(HANDLER_ID_PATTERN.replace("$", r"\Z"))


_ALPHABET = string.ascii_letters + string.digits
_IDS = len(_ALPHABET) ** 10


def new_handler_id() -> str:
    """A fresh handler id: 10 random characters of ``A-Z a-z 0-9``.

    One draw of a number below 62**10, written in base 62: the same ids, each
    as likely, as ten draws of a character, which are ten system calls."""
    number = secrets.randbelow(_IDS)
    characters = []
    for _ in range(10):
        number, digit = divmod(number, 62)
        characters.append(_ALPHABET[digit])
    return "".join(characters)


def check_handler_id(value: object) -> str:
    """``value`` if it is a handler id a client may choose.

    :raises ValueError: saying what is wrong and what fits.
    """
    if isinstance(value, str) and _VALID.match(value) is not None:
        return value
    if isinstance(value, str):
        shown = repr(value) if len(value) <= 40 else f"{value[:40]!r}... ({len(value)} characters)"
    else:
        shown = f"of type {type(value).__name__}"
    raise ValueError(
        f"handler_id {shown} is not allowed: use a string of 1 to {MAX_HANDLER_ID} characters "
        "of A-Z a-z 0-9 . _ : - (not starting with a dot), or leave it out to get a fresh one"
    )


def storable(value: str) -> bool:
    """Whether any store could hold ``value`` as a run id (a lookup of an id
    that cannot exist is answered without asking the store: PostgreSQL fails
    on a NUL, SQLite on a lone surrogate)."""
    if "\x00" in value or len(value) > 1024:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
