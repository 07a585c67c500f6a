"""The two ``hydra`` names the model registry uses, for a scoring environment without hydra.

``instantiate`` builds ``{"_target_": "package.module.Class", **arguments}`` as hydra does for the specs a
submission carries (plain values, nested ``_target_`` mappings built first, ``_partial_``); the export
points eegphase targets into the bundle. ``tests/export`` checks the bundled models' outputs equal the
hydra-built ones.
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["InstantiationException", "instantiate"]


class InstantiationException(Exception):
    """A target that cannot be found or called (hydra.errors.InstantiationException)."""


def _locate(path: str):
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        module_name = ".".join(parts[:end])
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name or module_name.startswith(f"{err.name}."):
                continue  # this prefix is not a module: try a shorter one
            raise
        try:
            for attribute in parts[end:]:
                found = getattr(found, attribute)
        except AttributeError as err:
            raise InstantiationException(f"Error locating target '{path}': {err}") from err
        return found
    raise InstantiationException(f"Error locating target '{path}'")


def _build(value):
    if isinstance(value, dict):
        if "_target_" in value:
            return instantiate(value)
        return {k: _build(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_build(v) for v in value]
    return value


def instantiate(config: dict, *args, _convert_: str = "all", **overrides):
    """``config["_target_"](*args, **arguments)``; ``_convert_`` is accepted for hydra's signature (values
    are plain already)."""
    arguments = {**config, **overrides}
    target = _locate(arguments.pop("_target_"))
    partial = arguments.pop("_partial_", False)
    arguments.pop("_convert_", None)
    arguments = {k: _build(v) for k, v in arguments.items()}
    if partial:
        return functools.partial(target, *args, **arguments)
    try:
        return target(*args, **arguments)
    except Exception as err:
        raise InstantiationException(f"Error in call to target '{config['_target_']}':\n{err!r}") from err
