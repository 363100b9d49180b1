"""Resources for steps, under the module name llama-index-workflows uses, so
``from workflows.resource import Resource, ResourceConfig, ResourceManager``
ports by changing the package name.

* ``Resource(factory, cache=True)``: a value a step (or another factory) asks
  for with ``Annotated[T, Resource(factory)]``;
* ``ResourceConfig(config_file, path_selector=None, ...)``: a value read from a
  JSON file into the annotated class;
* ``ResourceManager``: values by resource name, shared by a workflow's runs
  (``Workflow(resource_manager=...)``).

Everything is defined in ``anyflow.resources`` (see docs/resources.md).
"""

from __future__ import annotations

from .resources import Resource as Resource
from .resources import ResourceConfig as ResourceConfig
from .resources import ResourceDefinition as ResourceDefinition
from .resources import ResourceDescriptor as ResourceDescriptor
from .resources import ResourceManager as ResourceManager

# llama-index-workflows' names for the classes behind its Resource() and
# ResourceConfig() functions, which its own code and tests import.
_Resource = Resource
_ResourceConfig = ResourceConfig

__all__ = [
    "Resource",
    "ResourceConfig",
    "ResourceDefinition",
    "ResourceDescriptor",
    "ResourceManager",
]
