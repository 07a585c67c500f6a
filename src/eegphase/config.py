"""Where the Hydra configs live: ``eegphase/conf`` inside the package (or EEGPHASE_CONF_DIR).

They ship in the wheel (pyproject's package-data), so an installed ``eegphase-run`` composes the same
configs as a clone; the repository's top-level ``conf`` is a symlink to this folder.
"""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = Path(os.environ.get("EEGPHASE_CONF_DIR", Path(__file__).resolve().parent / "conf"))
