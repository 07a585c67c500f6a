"""Collect the real source of ``eegphase.models`` so a submission can rebuild the model without eegphase.

Starting from :mod:`eegphase.models.predictor` (and the modules of the encoders' ``_target_`` classes), every
``eegphase`` module it imports (transitively) is read with :mod:`inspect`, and its ``eegphase`` imports, and
its ``timm.layers`` and ``hydra`` ones (served by small shims), are rewritten by :mod:`ast` to point into the
bundle. braindecode is imported, not copied: the scoring environment has it. Any other third-party import
fails here, at export time, naming the module and the import, instead of failing later on the scorer's
machine.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from hydra.utils import get_object

from eegphase.export import hydra_shim, timm_shim

BUNDLE_PACKAGE = "_eegphase_bundle"
ROOT_MODULE = "eegphase.models.predictor"
# modules whose few names the models use, served by a shim in the bundle: module -> (bundle key, shim)
SHIMS: dict[str, tuple[str, ModuleType]] = {
    "timm.layers": ("_timm_layers", timm_shim),
    "hydra.utils": ("_hydra", hydra_shim),
    "hydra.errors": ("_hydra", hydra_shim),
}
# Importable where the challenge scores: torch, braindecode and what it pulls in (numpy, mne).
ALLOWED_THIRD_PARTY = frozenset({"torch", "numpy", "mne", "braindecode"})


class BundleError(Exception):
    """A model module uses something the submission cannot carry; the message names module and import."""


def _relative(module_name: str) -> str:
    """'eegphase.models.labram' -> 'models.labram' (the key inside the bundle)."""
    return module_name.removeprefix("eegphase.")


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        raise BundleError("relative imports are not supported")
    if node.module == "eegphase" or (node.module or "").startswith("eegphase."):
        # `from eegphase.models import electrodes` may name a submodule rather than an attribute.
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [node.module or ""]


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def rewrite_imports(module_name: str, source: str) -> tuple[str, list[str]]:
    """Source with eegphase/timm imports pointed into the bundle, and the eegphase modules it needs."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[ast.stmt, str]] = []
    needed: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        where = f"{module_name} line {node.lineno}"
        try:
            targets = _imported_modules(node)
        except BundleError as err:
            raise BundleError(f"{where}: {err}") from err
        top = targets[0].split(".")[0]
        if top == "eegphase":
            needed += [t for t in targets if _is_module(t)]
            if isinstance(node, ast.Import):
                raise BundleError(f"{where}: use `from eegphase... import name`, not `import eegphase...`")
            new = ast.ImportFrom(
                module=f"{BUNDLE_PACKAGE}.{_relative(node.module)}", names=node.names, level=0
            )
            edits.append((node, ast.unparse(new)))
        elif top in {name.split(".")[0] for name in SHIMS}:
            key = _check_shimmed_import(node, where)
            new = ast.ImportFrom(module=f"{BUNDLE_PACKAGE}.{key}", names=node.names, level=0)
            edits.append((node, ast.unparse(new)))
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "__future__":
            raise BundleError(
                f"{where} imports {targets[0]!r}, which the scoring environment may lack "
                f"(allowed: the standard library, {', '.join(sorted(ALLOWED_THIRD_PARTY))}, and the names "
                f"the shims provide: {', '.join(f'{m} {s.__all__}' for m, (_, s) in SHIMS.items())})"
            )
    # Edit bottom-up so earlier line numbers stay valid; an import never shares its lines with other code.
    for node, text in sorted(edits, key=lambda edit: edit[0].lineno, reverse=True):
        indent = lines[node.lineno - 1][: node.col_offset]
        lines[node.lineno - 1 : node.end_lineno] = [f"{indent}{text}\n"]
    return "".join(lines), needed


def _check_shimmed_import(node: ast.Import | ast.ImportFrom, where: str) -> str:
    """The bundle key of the shim that serves ``node`` (``from timm.layers import Mlp``)."""
    if not isinstance(node, ast.ImportFrom) or node.module not in SHIMS:
        raise BundleError(f"{where}: only `from <{' | '.join(SHIMS)}> import ...` can be bundled")
    key, shim = SHIMS[node.module]
    missing = [alias.name for alias in node.names if alias.name not in shim.__all__]
    if missing:
        raise BundleError(
            f"{where} imports {missing} from {node.module}; {shim.__name__} provides only {shim.__all__}"
        )
    return key


def model_sources(roots: Iterable[str] = (ROOT_MODULE,)) -> dict[str, str]:
    """``{bundle key: rewritten source}`` for the ``roots`` and every eegphase module they import, plus the shims.

    Keys are dotted paths below the bundle package ('models.labram'); package ``__init__`` files are not
    carried (the bundle's packages are empty namespaces).
    """
    sources: dict[str, str] = {key: inspect.getsource(shim) for key, shim in SHIMS.values()}
    pending = list(roots)
    while pending:
        name = pending.pop()
        module = importlib.import_module(name)
        if hasattr(module, "__path__") or _relative(name) in sources:
            continue  # a package: only its submodules are needed
        source, needed = rewrite_imports(name, inspect.getsource(module))
        sources[_relative(name)] = source
        pending += [n for n in needed if _relative(n) not in sources]
    return dict(sorted(sources.items()))


def bundle_targets(spec: Any) -> tuple[Any, list[str]]:
    """``spec`` (an encoder spec) with every eegphase ``_target_`` pointed into the bundle, and the eegphase
    modules those targets live in (to bundle beside the predictor's). A braindecode target stays as it is;
    any other package's target is a BundleError naming it."""
    modules: list[str] = []

    def visit(value: Any) -> Any:
        if isinstance(value, Mapping):
            out = {k: visit(v) for k, v in value.items()}
            if isinstance(out.get("_target_"), str):
                out["_target_"] = retarget(out["_target_"])
            return out
        if isinstance(value, list | tuple):
            return [visit(v) for v in value]
        return value

    def retarget(target: str) -> str:
        top = target.split(".")[0]
        if top in ALLOWED_THIRD_PARTY:
            return target
        if top != "eegphase":
            raise BundleError(
                f"encoder _target_ {target!r}: the submission carries eegphase's model code and imports "
                f"{', '.join(sorted(ALLOWED_THIRD_PARTY))}; other packages cannot be bundled"
            )
        try:
            found = get_object(target)
        except ImportError as err:
            raise BundleError(f"encoder _target_ {target!r} not found: {err}") from err
        modules.append(found.__module__)
        return f"{BUNDLE_PACKAGE}.{_relative(found.__module__)}.{found.__qualname__}"

    return visit(spec), modules
