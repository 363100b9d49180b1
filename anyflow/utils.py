"""Step-signature helpers (llama-index-workflows' ``workflows.utils``): read a
function's step signature, check it, list a class's steps, tell a function
from a method by its qualified name.  See
``anyflow._signature``."""

from __future__ import annotations

from ._signature import StepSignatureSpec as StepSignatureSpec
from ._signature import _get_param_types as _get_param_types
from ._signature import _get_return_types as _get_return_types
from ._signature import get_steps_from_class as get_steps_from_class
from ._signature import get_steps_from_instance as get_steps_from_instance
from ._signature import inspect_signature as inspect_signature
from ._signature import validate_step_signature as validate_step_signature
from .decorators import is_free_function as is_free_function

__all__ = [
    "StepSignatureSpec",
    "get_steps_from_class",
    "get_steps_from_instance",
    "inspect_signature",
    "is_free_function",
    "validate_step_signature",
]
