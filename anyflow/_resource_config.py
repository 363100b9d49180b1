"""``ResourceConfig``: a resource whose value is read from a JSON file.

    config: Annotated[ClassifierConfig, ResourceConfig("classifier.json", path_selector="prod")]

The file is read, the object at ``path_selector`` (dotted keys) is taken, and
it is turned into the annotated class: a pydantic model (``model_validate``),
an attrs class (anyflow's converter, strict), or left a ``dict``.  The class
comes from the annotation unless ``cls_factory`` names it.  Like a factory's
value, it is read when a step first needs it, once per run (``cache=True``, the
default) or for each step call; ``Workflow.validate()`` reads every config
before anything runs.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio.to_thread
import attrs

from ._pydantic import is_model_class, load_model

__all__ = ["ResourceConfig"]

T = TypeVar("T")


def _json_file(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"ResourceConfig takes the path of a JSON file as a str, not {value!r}")
    if Path(value).suffix != ".json":
        raise ValueError(
            f"ResourceConfig reads JSON files only, and {str(value)!r} does not end in .json"
        )


def _check_model(model: Any) -> str | None:
    """Why ``model`` cannot receive a config, or None if it can."""
    if model is None or model is Any or model is dict or typing.get_origin(model) is dict:
        return None
    if is_model_class(model) or (isinstance(model, type) and attrs.has(model)):
        return None
    return (
        f"{model!r} cannot be read from a JSON config: annotate the parameter with a "
        "pydantic model, an attrs class or dict"
    )


@attrs.define(eq=False)
class ResourceConfig(Generic[T]):
    """Marks a step parameter (or a factory's parameter) as a config read from a JSON file."""

    config_file: str = attrs.field(validator=_json_file)
    """The JSON file, relative to the working directory when it is read."""
    path_selector: str | None = None
    """Dotted keys of the object to read in the file (``"models.fast"``); None for all of it."""
    label: str | None = None
    """A short name for drawings of the workflow."""
    description: str | None = None
    """What the config holds, for drawings and documentation."""
    cache: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """True (the default): read once per run; False: read again for each step call."""
    cls_factory: Any = attrs.field(default=None, kw_only=True)
    """The class the config becomes; None to take it from the parameter's annotation."""

    @property
    def name(self) -> str:
        """The file, and the selector after a dot: the name under which a
        ``ResourceManager`` may hold a value for it."""
        base = str(self.config_file)
        return base if self.path_selector is None else f"{base}.{self.path_selector}"

    @property
    def path(self) -> str:
        """The absolute path of the file, as it would be read now (``config_file``
        is read relative to the working directory at that time)."""
        return str(Path(self.config_file).resolve())

    def bound_to(self, annotation: Any) -> ResourceConfig[T]:
        """This config, reading into ``annotation`` unless it names its ``cls_factory``
        (a copy: the marker itself is left as it is).

        :raises TypeError: if the class cannot receive a config.
        """
        model = self.cls_factory if self.cls_factory is not None else annotation
        problem = _check_model(model)
        if problem is not None:
            raise TypeError(problem)
        return self if model is self.cls_factory else attrs.evolve(self, cls_factory=model)

    def call(self) -> Any:
        """``load()``, under the name llama-index-workflows gives it."""
        return self.load()

    def load(self) -> Any:
        """Read the file now and build the value.

        :raises FileNotFoundError: if there is no such file.
        :raises ValueError: if it is not JSON, the selector does not lead to an
            object, or the data does not fit the class (pydantic's
            ``ValidationError`` and anyflow's ``ContextSerdeError`` are ``ValueError``s).
        """
        path = Path(self.path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file {str(self.config_file)!r}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(self.config_file)!r} is not valid JSON: {exc}") from exc
        where = ""
        for key in (self.path_selector or "").split(".") if self.path_selector else ():
            where = f"{where}.{key}" if where else key
            data = data.get(key) if isinstance(data, dict) else None
            if not isinstance(data, dict):
                raise ValueError(
                    f"Expected dictionary for configuration from {path} at path {where}, "
                    f"got: {type(data)}. path_selector={self.path_selector!r} must lead "
                    f"through JSON objects in {str(self.config_file)!r}, but {where!r} there "
                    f"is not one ({'missing or null' if data is None else type(data).__name__})"
                )
        return self._build(data)

    def _build(self, data: Any) -> Any:
        model = self.cls_factory
        if is_model_class(model):
            return load_model(model, data)
        if isinstance(model, type) and attrs.has(model):
            from .serialization import decode_value  # the engine's one converter

            return decode_value(data, model, f"{self.name}")
        return data

    async def aload(self) -> Any:
        """``load()`` in a worker thread, so a slow disk does not block the run."""
        return await anyio.to_thread.run_sync(self.load)
