"""Finding the workflow a TARGET names; public as ``anyflow.targets``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .errors import AnyflowError
from .workflow import Workflow

__all__ = [
    "TargetError",
    "load_module",
    "load_workflow",
    "missing_name",
    "split_target",
    "workflow_names",
]


class TargetError(Exception):
    """A TARGET or --store that cannot be used; the message says how to fix it."""


def split_target(target: str) -> tuple[str, str]:
    """``(module or file, name)`` of ``target``.

    :raises TargetError: if it is not ``module:name`` or ``path/to/file.py:name``.
    """
    module_part, sep, name = target.rpartition(":")
    if not sep or not module_part or not name:
        raise TargetError(
            f"TARGET is module:name or path/to/file.py:name, not {target!r} "
            "(e.g. myflows:JokeFlow or flows/jokes.py:JokeFlow)"
        )
    return module_part, name


def load_module(spec: str) -> Any:
    """The module ``spec`` names: a path to a ``.py`` file, or a dotted module name.

    :raises TargetError: if there is no such file or module.
    """
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            raise TargetError(f"no file {spec!r} (check the path; it is relative to {Path.cwd()})")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise TargetError(f"cannot load {spec!r} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        try:
            module_spec.loader.exec_module(module)
        except AnyflowError as exc:  # a malformed workflow, said at class definition
            raise TargetError(f"{spec}: {exc}") from exc
        return module
    # As ``python -m`` does (and uvicorn): a module in the current directory
    # is found, also from the installed ``anyflow`` script.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            # from None: the message says what to fix; the import machinery's frames do not
            raise TargetError(
                f"no module {spec!r} (is it on PYTHONPATH? a file needs a path ending in .py)"
            ) from None
        raise
    except AnyflowError as exc:
        raise TargetError(f"{spec}: {exc}") from exc


def workflow_names(module: Any) -> list[str]:
    """The workflows (subclasses and instances) ``module`` defines or imports."""
    return sorted(
        n
        for n, v in vars(module).items()
        if isinstance(v, Workflow) or (isinstance(v, type) and issubclass(v, Workflow))
        if v is not Workflow
    )


def missing_name(module_part: str, name: str, names: list[str]) -> str:
    """What to say when ``module_part`` has no ``name``: the names it has."""
    hint = f"; its workflows are: {', '.join(names)}" if names else ""
    return f"{module_part!r} has no {name!r}{hint}"


def load_workflow(target: str) -> Workflow:
    """The workflow ``target`` names: a ``Workflow`` subclass (built with no
    arguments) or instance.

    :raises TargetError: naming what is missing or wrong.
    """
    module_part, name = split_target(target)
    module = load_module(module_part)
    try:
        found = getattr(module, name)
    except AttributeError:
        # from None: the failed getattr adds nothing to the names listed
        raise TargetError(missing_name(module_part, name, workflow_names(module))) from None
    if isinstance(found, type) and issubclass(found, Workflow):
        try:
            return found()
        except AnyflowError as exc:
            raise TargetError(f"{target}: {exc}") from exc
        except TypeError as exc:
            raise TargetError(
                f"cannot build {target} with no arguments ({exc}): name an instance instead"
            ) from exc
    if isinstance(found, Workflow):
        return found
    raise TargetError(
        f"{target} is {found!r}, not a Workflow: name a Workflow subclass or instance"
    )
