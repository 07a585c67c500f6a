"""Turn the ``data`` config into readers: one per entry of ``data.sources``."""

from __future__ import annotations

from collections.abc import Mapping

from eegphase.data.readers import make_reader
from eegphase.data.recording import Reader


def readers_from_config(data_cfg: Mapping) -> list[Reader]:
    """Build the readers of a data config; each source needs ``kind`` and ``root``, the rest goes to the reader."""
    sources = data_cfg.get("sources")
    if not sources:
        raise KeyError(f"data config {data_cfg.get('name', '?')!r} has no 'sources'")
    readers = []
    for name, source in dict(sources).items():
        options = {k: v for k, v in dict(source).items() if v is not None}
        for required in ("kind", "root"):
            if required not in options:
                raise KeyError(f"data.sources.{name} needs '{required}'")
        kind, root = options.pop("kind"), options.pop("root")
        options.setdefault("dataset", name)
        readers.append(make_reader(kind, root, **options))
    return readers
