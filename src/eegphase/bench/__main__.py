"""``python -m eegphase.bench data|train|grid|learning [options]``."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("data", "train", "grid", "learning")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m eegphase.bench {{{'|'.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"eegphase.bench.{argv[0]}")
    except ModuleNotFoundError as exc:
        print(f"benchmark {argv[0]!r} is not available yet ({exc})", file=sys.stderr)
        return 2
    module.main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
