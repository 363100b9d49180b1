"""A context saved as data (``ctx.to_dict()``) and read back (``Context.from_dict``).

The format is ``{"version", "workflow", "store", "run"}``: the store as JSON
(or, with a pickling serializer, each value JSON cannot hold pickled), and a
run that has not finished as its reducer state, so that another process can
resume it. Kept apart from ``Context`` because it is a wire format with its
own rules (versions, the workflow a run may resume in, the incumbent's saved
contexts named as such), while ``Context`` decides only what is saved in
which phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ContextSerdeError
from ..serialization import decode_state, decode_value, encode_state, encode_value, type_name
from ._store import StateStore
from .serializers import (
    BaseSerializer,
    JsonSerializer,
    is_pickled,
    pickle_leaves,
    pickled,
    unpickle_leaves,
)

if TYPE_CHECKING:
    from .._core.state import RunState
    from ..workflow import Workflow

__all__ = [
    "FORMAT_VERSION",
    "INCUMBENT_KEYS",
    "SavedContext",
    "check_saved",
    "read_run",
    "read_store",
    "save_context",
]

_JSON = JsonSerializer()

FORMAT_VERSION = 1
"""Version of the ``to_dict`` format; bump it when the format changes."""

INCUMBENT_KEYS = frozenset({"state", "is_running", "workers", "queues", "in_progress"})
"""Keys of llama-index-workflows' saved contexts (any of its versions) that
anyflow's never has: a context saved by the incumbent is named as such."""


class SavedContext(dict[str, Any]):
    """What ``ctx.to_dict()`` returns: a plain dict to JSON, pickle and
    ``Context.from_dict``, whose one addition is the error for a key of the
    incumbent's format (``data["state"]``, ``data["is_running"]``, ...).

    A program ported from llama-index-workflows that reads its saved context
    by those keys would otherwise stop at a bare ``KeyError: 'state'``; this
    one names anyflow's keys instead.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        if key in INCUMBENT_KEYS:
            raise KeyError(
                f"{key!r}: anyflow's saved context has no {key!r} (llama-index-workflows' "
                "format); it is {'version', 'workflow', 'store', 'run'}: the state store is "
                "data['store'], a run that has not finished is data['run'] (None once it "
                "finished, so data['run'] is not None says what 'is_running' said); see "
                "docs/serialization.md"
            )
        raise KeyError(key)


def save_context(
    workflow: Workflow, store: Any, state: RunState | None, serializer: BaseSerializer | None
) -> dict[str, Any]:
    """The saved form of a context: ``store`` (the store's ``to_dict()``) and
    ``state``, the run, unless it is None or finished."""
    serializer = serializer or _JSON
    run: Any = None
    if state is not None and not state.status.finished:
        run = encode_state(state, check=not serializer.pickles)
        if serializer.pickles:
            run = pickle_leaves(run, "$.run")
    return SavedContext(
        version=FORMAT_VERSION,
        workflow=type_name(type(workflow)),
        store=_encode_store(store, serializer),
        run=run,
    )


def check_saved(workflow: Workflow, data: Any) -> None:
    """Raise ``ContextSerdeError`` unless ``data`` is a context this anyflow
    saved in a format it reads, for ``workflow`` if it holds a run."""
    if not isinstance(data, dict):
        raise ContextSerdeError(f"a saved context is a dict, not {type(data).__name__}")
    version = data.get("version")
    if "workflow" not in data and not INCUMBENT_KEYS.isdisjoint(data):
        raise ContextSerdeError(
            "this context was saved by llama-index-workflows (it has "
            f"{', '.join(sorted(INCUMBENT_KEYS.intersection(data)))}), whose saved "
            "contexts anyflow cannot read: anyflow saves a run as version, workflow, store "
            "and run (docs/serialization.md). Finish that run with llama-index-workflows, "
            "or start it anew on anyflow (a store's values can be set on Context(wf).store "
            "before wf.run(ctx=ctx))"
        )
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        why = "; the payload was likely written by a newer version of anyflow"
        raise ContextSerdeError(
            f"Cannot load serialized workflow context with version={version!r}; this "
            f"anyflow reads version {FORMAT_VERSION} contexts ($.version)" + (why if newer else "")
        )
    expected = type_name(type(workflow))
    # A saved run resumes only in the workflow it was saved from; a store
    # alone (a finished run's, or one never run) may seed any workflow.
    if data.get("workflow") != expected and data.get("run") is not None:
        raise ContextSerdeError(
            f"$.workflow: this context was saved from {data.get('workflow')!r}, "
            f"not from {expected!r}, and its run can only resume in the workflow that "
            "saved it"
        )
    unknown = set(data) - {"version", "workflow", "store", "run"}
    if unknown:
        raise ContextSerdeError(f"unknown keys at $: {', '.join(sorted(unknown))}")


def read_store(
    data: dict[str, Any], state_type: Any, serializer: BaseSerializer | None
) -> StateStore[Any]:
    """The store of checked saved data, of ``state_type`` if the workflow has one."""
    store_data = data.get("store")
    if not isinstance(store_data, dict):
        raise ContextSerdeError("$.store must be a dict")
    serializer = serializer or _JSON
    if is_pickled(store_data):
        return StateStore(serializer.unpickle(store_data, "$.store"))
    if state_type is None:
        return StateStore({k: serializer.decode(v, f"$.store.{k}") for k, v in store_data.items()})
    return StateStore(decode_value(store_data, state_type, "$.store"))


def read_run(
    data: dict[str, Any], workflow: Workflow, serializer: BaseSerializer | None
) -> RunState | None:
    """The run of checked saved data, to resume, or None."""
    serializer = serializer or _JSON
    run = data.get("run")
    if run is None:
        return None
    return decode_state(unpickle_leaves(run, serializer, "$.run"), workflow._spec)


def _encode_store(store: Any, serializer: BaseSerializer) -> Any:
    """The store as saved data: JSON, or with a pickling serializer, each value
    JSON cannot hold pickled (the whole store, for a typed state)."""
    try:
        return encode_value(store, "$.store")
    except ContextSerdeError:
        if not serializer.pickles:
            raise
    if isinstance(store, dict):
        return {k: serializer.encode(v, f"$.store.{k}") for k, v in store.items()}
    return pickled(store, "$.store")
