"""Entry point: write a synthetic HBN-EEG (``mode=hbn``) or TUH-style (``mode=tuh``) dataset.

``python -m eegphase.synth out=data/synthetic-hbn`` (see conf/synth.yaml for every option).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from eegphase.config import CONF_DIR
from eegphase.data.synthetic import generate_hbn, generate_tuh

DEFAULT_HBN_SCALE = 0.08  # conf/synth.yaml: duration_scale=null


def run(cfg: DictConfig) -> Path:
    """Generate what ``cfg`` asks for and return the dataset folder."""
    scale = cfg.duration_scale
    if cfg.mode == "hbn":
        return generate_hbn(
            cfg.out,
            releases=list(OmegaConf.to_container(cfg.releases)),
            subjects_per_release=cfg.subjects_per_release,
            fmt=cfg.format,
            duration_scale=DEFAULT_HBN_SCALE if scale is None else scale,
            ccd_trials_per_run=cfg.ccd_trials_per_run,
            seed=cfg.seed,
            n_jobs=cfg.n_jobs,
            six_channel_recordings=cfg.six_channel_recordings,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
    if cfg.mode == "tuh":
        return generate_tuh(
            cfg.out,
            n_subjects=cfg.n_subjects,
            seed=cfg.seed,
            duration_scale=1.0 if scale is None else scale,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
    raise ValueError(f"mode={cfg.mode!r} is not supported; use 'hbn' or 'tuh'")


@hydra.main(config_path=str(CONF_DIR), config_name="synth", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = run(cfg)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
