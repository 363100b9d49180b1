"""The journal's records, public for every runtime that keeps a run's history.

``DurableRuntime`` writes these records to a ``Store``; ``DBOSRuntime`` writes
the same records through DBOS; ``anyflow runs``, ``testing.replay_journal`` and
``graph.recorded_run_graph`` read them back.  They are defined in
``anyflow.durable._journal``; this module is the name the other packages (and a
user's own journaling runtime) import them by, so the format has one owner.

- ``encode_record`` / ``decode_record``: one checksummed JSON record.
- ``checked_tick_record`` / ``checked_event_record``: a tick or an event as a
  record, refused at once if it would not read back as itself.
- ``decode_ticks``, ``replay``, ``replay_ticks``: a run's state rebuilt by
  folding its recorded ticks through ``reduce``.
- ``encode_outcome`` / ``decode_outcome`` / ``status_of``: how a run ended.
- ``fingerprint`` / ``check_fingerprint`` / ``changes``: the workflow's shape
  recorded with a run, so a changed workflow is refused rather than resumed wrong.
- ``default_start`` and ``load_state``: a run's start event and state store as
  recorded.
"""

from __future__ import annotations

from ._journal import MAX_NESTING as MAX_NESTING
from ._journal import changes as changes
from ._journal import check_fingerprint as check_fingerprint
from ._journal import checked_event_record as checked_event_record
from ._journal import checked_tick_record as checked_tick_record
from ._journal import decode_outcome as decode_outcome
from ._journal import decode_record as decode_record
from ._journal import decode_ticks as decode_ticks
from ._journal import default_start as default_start
from ._journal import encode_outcome as encode_outcome
from ._journal import encode_record as encode_record
from ._journal import fingerprint as fingerprint
from ._journal import load_state as load_state
from ._journal import replay as replay
from ._journal import replay_ticks as replay_ticks
from ._journal import status_of as status_of

__all__ = [
    "MAX_NESTING",
    "changes",
    "check_fingerprint",
    "checked_event_record",
    "checked_tick_record",
    "decode_outcome",
    "decode_record",
    "decode_ticks",
    "default_start",
    "encode_outcome",
    "encode_record",
    "fingerprint",
    "load_state",
    "replay",
    "replay_ticks",
    "status_of",
]
