"""``copy_state_for_edit``: an isolated copy of a state, that shares live handles.

A state holds data, and sometimes live objects next to it: a client, a lock,
a tokenizer.  Copying the data is what isolates an edit; copying a live object
is at best wasted and at worst breaks it (a lock cannot be copied; a copied
tokenizer may rebuild its tables).  So the copy walks the state and decides
per value:

* built-in containers (``dict`` and ``DictState``, ``list``, ``tuple``,
  ``set``, ``frozenset``, ``deque``) are rebuilt, their items copied by these
  same rules;
* a pydantic model is copied field by field, except fields declared
  ``Field(exclude=True)`` (not part of its data: that is how a model marks a
  live handle), which are shared; its extra and private values are copied;
* an attrs instance is copied field by field;
* anything else is ``copy.deepcopy``-ed, and shared when that raises.

An object met twice is copied once, and cycles end, through one ``deepcopy``
memo for the whole walk.  This is llama-index-workflows' rule for what its
``edit_state`` hands out, under its name, so code written against it keeps
its meaning.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections import deque
from typing import Any, TypeVar

import attrs

from ._dict_state import DictState
from ._pydantic import is_model

__all__ = ["copy_state_for_edit"]

T = TypeVar("T")


def copy_state_for_edit(state: T) -> T:
    """An isolated copy of ``state`` (see the module's docstring for the rules)."""
    copied: T = _copy(state, {})
    return copied


def _deepcopy_or_share(value: Any, memo: dict[int, Any]) -> Any:
    try:
        return copy.deepcopy(value, memo)
    except Exception:
        memo[id(value)] = value  # a copier that failed half-way may have left an entry
        return value


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    key = id(value)
    if key in memo:
        return memo[key]
    kind = type(value)
    if kind is dict or isinstance(value, DictState):
        out = kind()
        memo[key] = out
        for k, v in value.items():
            out[_copy(k, memo)] = _copy(v, memo)
        return out
    if kind is list:
        items: list[Any] = []
        memo[key] = items
        items.extend(_copy(v, memo) for v in value)
        return items
    if kind is deque:
        queue: deque[Any] = deque(maxlen=value.maxlen)
        memo[key] = queue
        queue.extend(_copy(v, memo) for v in value)
        return queue
    if kind is set:
        members: set[Any] = set()
        memo[key] = members
        members.update(_copy(v, memo) for v in value)
        return members
    if kind is tuple or kind is frozenset:
        # Immutable: built whole, so a cycle through it may have made it already.
        return memo.setdefault(key, kind(_copy(v, memo) for v in value))
    if is_model(value):
        if type(value).__deepcopy__ is not sys.modules["pydantic"].BaseModel.__deepcopy__:
            return _deepcopy_or_share(value, memo)  # the model says how it copies
        try:
            return _copy_model(value, memo)
        except Exception:
            memo[key] = value
            return value
    if attrs.has(kind) and not isinstance(value, type):
        return _copy_attrs(value, memo)
    return _deepcopy_or_share(value, memo)


def _copy_model(value: Any, memo: dict[int, Any]) -> Any:
    out = value.model_copy()  # the layout: fields, fields set, extras, private values
    memo[id(value)] = out
    fields = type(value).model_fields
    contents = vars(out)
    for name, child in vars(value).items():
        declared = fields.get(name)
        if declared is None or declared.exclude is not True:
            contents[name] = _copy(child, memo)
    for extra in (out.__pydantic_extra__, out.__pydantic_private__):
        for name, child in list((extra or {}).items()):
            extra[name] = _copy(child, memo)
    return out


def _copy_attrs(value: Any, memo: dict[int, Any]) -> Any:
    out = copy.copy(value)
    memo[id(value)] = out
    for field in attrs.fields(type(value)):
        with contextlib.suppress(AttributeError):  # a slot without a value
            object.__setattr__(out, field.name, _copy(getattr(value, field.name), memo))
    return out
