"""How a saved context holds values: as JSON (the default), or with pickle for
values JSON cannot hold.

anyflow has one converter (cattrs) for events and state, so a serializer does
not choose a format; it only decides what happens to a value the converter
cannot turn into JSON.  ``JsonSerializer`` refuses it (``ContextSerdeError``,
naming the value's path); ``PickleSerializer`` pickles it, and reads pickled
values back.  Pickle runs code when it loads, so a context saved with pickled
values is read back only when ``PickleSerializer`` is passed to
``Context.from_dict`` explicitly: load such data only from a source you trust.
"""

from __future__ import annotations

import base64
import json
import math
import pickle
from typing import Any

from ..errors import ContextSerdeError
from ..serialization import decode_value, encode_value

__all__ = ["BaseSerializer", "JsonSerializer", "PickleSerializer"]

PICKLED = "__anyflow_pickled__"
"""The key of ``{PICKLED: base64}``, the form a pickled value takes in saved data."""


class BaseSerializer:
    """What ``ctx.to_dict(serializer=...)`` and ``Context.from_dict(..., serializer=...)`` take."""

    pickles = False
    """Whether values JSON cannot hold are pickled (and pickled values read back)."""

    def encode(self, value: Any, path: str) -> Any:
        """``value`` as JSON-safe data.

        :raises ContextSerdeError: naming ``path`` if it cannot be encoded.
        """
        try:
            return encode_value(value, path)
        except ContextSerdeError:
            if not self.pickles:
                raise
        return pickled(value, path)

    def decode(self, data: Any, path: str) -> Any:
        """A value back from ``encode``'s data (events and pickled values revived).

        :raises ContextSerdeError: for pickled data, unless this serializer pickles.
        """
        if is_pickled(data):
            return self.unpickle(data, path)
        return decode_value(data, Any, path)

    def unpickle(self, data: Any, path: str) -> Any:
        """The value a ``{PICKLED: ...}`` entry holds, if this serializer may load it."""
        if not self.pickles:
            raise ContextSerdeError(
                f"{path} holds a pickled value: pass serializer=PickleSerializer() to "
                "Context.from_dict to read it (only for data from a source you trust)"
            )
        try:
            return pickle.loads(base64.b64decode(data[PICKLED]))
        except Exception as exc:
            raise ContextSerdeError(f"{path}: the pickled value cannot be loaded: {exc}") from exc

    def serialize_value(self, value: Any) -> Any:
        """``value`` as JSON-safe data (what ``serialize`` writes, before it is text)."""
        return self.encode(value, "$")

    def deserialize_value(self, data: Any) -> Any:
        """A value back from ``serialize_value``'s data."""
        return self.decode(data, "$")

    def serialize(self, value: Any) -> str:
        """``value`` (an event, plain data, or with pickle anything picklable) as text."""
        return json.dumps(self.serialize_value(value))

    def deserialize(self, value: str) -> Any:
        """The value ``serialize`` wrote."""
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise ContextSerdeError(f"not a serialized value: {exc}") from exc
        return self.deserialize_value(data)


class JsonSerializer(BaseSerializer):
    """Values as JSON: plain data and events; anything else is refused, naming its path."""


class PickleSerializer(JsonSerializer):
    """JSON where it can, pickle for the values JSON cannot hold (locks, functions,
    clients): only for contexts saved and restored by code you trust."""

    pickles = True


def pickled(value: Any, path: str) -> dict[str, str]:
    """``value`` pickled into saved data.

    :raises ContextSerdeError: if pickle cannot hold it either.
    """
    try:
        payload = pickle.dumps(value)
    except Exception as exc:
        raise ContextSerdeError(
            f"{type(value).__name__} value at {path} can be neither JSON nor pickled: {exc}"
        ) from exc
    return {PICKLED: base64.b64encode(payload).decode("ascii")}


def is_pickled(data: Any) -> bool:
    return isinstance(data, dict) and len(data) == 1 and PICKLED in data


def pickle_leaves(data: Any, path: str) -> Any:
    """``data`` with every value JSON cannot hold pickled in place."""
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, float):
        return data if math.isfinite(data) else pickled(data, path)
    if isinstance(data, list | tuple):
        return [pickle_leaves(item, f"{path}[{i}]") for i, item in enumerate(data)]
    if isinstance(data, dict) and all(isinstance(k, str) for k in data):
        return {k: pickle_leaves(v, f"{path}.{k}") for k, v in data.items()}
    return pickled(data, path)


def unpickle_leaves(data: Any, serializer: BaseSerializer, path: str) -> Any:
    """``data`` with every pickled value loaded (``serializer`` decides whether it may)."""
    if is_pickled(data):
        return serializer.unpickle(data, path)
    if isinstance(data, list):
        return [unpickle_leaves(item, serializer, f"{path}[{i}]") for i, item in enumerate(data)]
    if isinstance(data, dict):
        return {k: unpickle_leaves(v, serializer, f"{path}.{k}") for k, v in data.items()}
    return data
