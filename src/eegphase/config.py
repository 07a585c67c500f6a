"""Where the Hydra configs live: the repository's ``conf/`` (or EEGPHASE_CONF_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = Path(os.environ.get("EEGPHASE_CONF_DIR", Path(__file__).resolve().parents[2] / "conf"))
