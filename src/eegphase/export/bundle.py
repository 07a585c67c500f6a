"""Collect the real source of ``eegphase.models`` so a submission can rebuild the model without eegphase.

Starting from :mod:`eegphase.models.predictor`, every ``eegphase`` module it imports (transitively) is read
with :mod:`inspect`, and its ``eegphase`` / ``timm.layers`` imports are rewritten by :mod:`ast` to point
into the bundle. Any other third-party import fails here, at export time, naming the module and the import,
instead of failing later on the scorer's machine.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys

from eegphase.export import timm_shim

BUNDLE_PACKAGE = "_eegphase_bundle"
ROOT_MODULE = "eegphase.models.predictor"
TIMM_SHIM = "_timm_layers"
# Importable where the challenge scores: torch, and what braindecode pulls in (numpy, mne).
ALLOWED_THIRD_PARTY = frozenset({"torch", "numpy", "mne"})


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
        elif top == "timm":
            _check_timm_import(node, where)
            new = ast.ImportFrom(module=f"{BUNDLE_PACKAGE}.{TIMM_SHIM}", names=node.names, level=0)
            edits.append((node, ast.unparse(new)))
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "__future__":
            raise BundleError(
                f"{where} imports {targets[0]!r}, which the scoring environment may lack "
                f"(allowed: the standard library, {', '.join(sorted(ALLOWED_THIRD_PARTY))}, timm.layers "
                f"names in {timm_shim.__name__})"
            )
    # Edit bottom-up so earlier line numbers stay valid; an import never shares its lines with other code.
    for node, text in sorted(edits, key=lambda edit: edit[0].lineno, reverse=True):
        indent = lines[node.lineno - 1][: node.col_offset]
        lines[node.lineno - 1 : node.end_lineno] = [f"{indent}{text}\n"]
    return "".join(lines), needed


def _check_timm_import(node: ast.Import | ast.ImportFrom, where: str) -> None:
    if not isinstance(node, ast.ImportFrom) or node.module != "timm.layers":
        raise BundleError(f"{where}: only `from timm.layers import ...` can be bundled")
    missing = [alias.name for alias in node.names if alias.name not in timm_shim.__all__]
    if missing:
        raise BundleError(
            f"{where} imports {missing} from timm.layers; {timm_shim.__name__} provides only "
            f"{timm_shim.__all__}"
        )


def model_sources(root: str = ROOT_MODULE) -> dict[str, str]:
    """``{bundle key: rewritten source}`` for ``root`` and every eegphase module it imports, plus the timm shim.

    Keys are dotted paths below the bundle package ('models.labram'); package ``__init__`` files are not
    carried (the bundle's packages are empty namespaces).
    """
    sources: dict[str, str] = {TIMM_SHIM: inspect.getsource(timm_shim)}
    pending = [root]
    while pending:
        name = pending.pop()
        module = importlib.import_module(name)
        if hasattr(module, "__path__") or _relative(name) in sources:
            continue  # a package: only its submodules are needed
        source, needed = rewrite_imports(name, inspect.getsource(module))
        sources[_relative(name)] = source
        pending += [n for n in needed if _relative(n) not in sources]
    return dict(sorted(sources.items()))
