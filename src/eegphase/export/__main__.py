"""``python -m eegphase.export c1=<ckpt|runs:/...> c2=<ckpt|runs:/...> out=submission.zip [options]``.

Options (``key=value``): ``c1_model=``/``c2_model=`` (JSON/YAML model config; required for file paths,
else read from the run's config.yaml), ``c1_input_scale=``/``c2_input_scale=`` (factor applied to the
scorer's input; default 1 for files, the run's ``preprocess.scale`` for URIs), ``c1_ema=``/``c2_ema=``
(true: export the EMA weights), ``c1_sfreq=``/``c2_sfreq=`` (the rate the model was trained on; default 100 for
files, the run's ``preprocess.sfreq`` for URIs; another rate is resampled to inside the submission),
``tracking_uri=`` (default sqlite:///mlflow.db).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from eegphase.export.builder import ExportError, build_submission
from eegphase.export.sources import parse_model_cfg, resolve_model

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_PER_CHALLENGE = ("", "_model", "_input_scale", "_ema", "_sfreq")
KNOWN_KEYS = {f"c{n}{suffix}" for n in (1, 2) for suffix in _PER_CHALLENGE} | {"out", "tracking_uri"}


def parse_args(argv: list[str]) -> dict[str, str]:
    """``key=value`` words -> dict; unknown or repeated keys and words without '=' are errors naming them."""
    options: dict[str, str] = {}
    for word in argv:
        key, sep, value = word.partition("=")
        if not sep:
            raise ExportError(f"argument {word!r} is not key=value (keys: {', '.join(sorted(KNOWN_KEYS))})")
        if key not in KNOWN_KEYS:
            raise ExportError(f"unknown option {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
        if key in options:
            raise ExportError(f"option {key!r} given twice")
        options[key] = value
    missing = [key for key in ("c1", "c2", "out") if key not in options]
    if missing:
        raise ExportError(
            f"missing option(s) {missing}: usage c1=<ckpt|runs:/..> c2=<ckpt|runs:/..> out=x.zip"
        )
    return options


def _flag(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ExportError(f"{key}={value!r} is not a boolean")
    return value in ("true", "1", "yes")


def _scale(options: dict[str, str], key: str) -> float | None:
    if key not in options:
        return None
    try:
        return float(options[key])
    except ValueError as err:
        raise ExportError(f"{key}={options[key]!r} is not a number") from err


def export(options: dict[str, str]) -> Path:
    tracking_uri = options.get("tracking_uri", DEFAULT_TRACKING_URI)
    with tempfile.TemporaryDirectory(prefix="eegphase-export-") as tmp:
        models = [
            resolve_model(
                options[f"c{n}"],
                parse_model_cfg(options[f"c{n}_model"], f"c{n}_model") if f"c{n}_model" in options else None,
                _scale(options, f"c{n}_input_scale"),
                _flag(options, f"c{n}_ema"),
                tracking_uri,
                Path(tmp) / f"c{n}",
                _scale(options, f"c{n}_sfreq"),
            )
            for n in (1, 2)
        ]
        return build_submission(options["out"], *models)


def main(argv: list[str] | None = None) -> int:
    try:
        out = export(parse_args(sys.argv[1:] if argv is None else argv))
    except ExportError as err:
        print(f"eegphase.export: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
