"""Records on anyflow's one converter, for code outside the engine that reads
or writes JSON of its own (``anyflow.client`` reads the server's answers so).

A record is an attrs class taught to the converter with ``register``: it is
written as a JSON object of its fields, and read back from one with ``read``,
which names the JSON path of the first thing that does not fit::

    @attrs.frozen
    class Reply:
        name: str
        count: int = 0

    records.register(Reply, absent=("count",), ignore_unknown=True)
    records.read({"name": "a", "note": "x"}, Reply, "$")    # Reply(name='a', count=0)
    records.read({"count": 1}, Reply, "$")                  # ContextSerdeError: missing $.name

Plain fields (strings, numbers, booleans, None, lists and tuples of them) and
fields that hold another registered record (``R``, ``R | None``,
``tuple[R, ...]``) need nothing more; any other field is given a ``Field``
(how to write it, and how to read it naming its path) as a keyword of
``register``. ``register``'s ``absent`` fields are read as their default when
the data lacks them; ``omitted`` ones are neither written nor read;
``ignore_unknown`` drops keys that are not fields instead of refusing them.
"""

from __future__ import annotations

from ._records import Field as Field
from ._records import read as read
from ._records import register as register

__all__ = ["Field", "read", "register"]
