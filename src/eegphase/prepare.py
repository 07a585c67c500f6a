"""``python -m eegphase.prepare data=hbn data.root=DIR``: build the preprocessed cache and windows tables."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from eegphase.config import CONF_DIR
from eegphase.data.prepare_cache import prepare, summary_table


@hydra.main(config_path=str(CONF_DIR), config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    manifest, report, tables = prepare(
        OmegaConf.to_container(cfg.data, resolve=True),
        cfg.cache_dir,
        OmegaConf.to_container(cfg.preprocess, resolve=True),
        OmegaConf.to_container(cfg.windows, resolve=True),
        OmegaConf.to_container(cfg.split, resolve=True),
        modes=cfg.get("modes") or None,
        n_jobs=cfg.n_jobs,
        verify_checksum=cfg.verify_checksum,
        progress=sys.stderr.isatty() or cfg.progress,
    )
    print(
        f"cache: {cfg.cache_dir}  recordings: {len(manifest.recordings)} "
        f"(built {report.built}, reused {report.reused}, skipped {len(report.skipped)})"
    )
    for selection in report.channels.values():  # each dropped channel once per dataset, not per recording
        print("\n".join(selection.summary_lines()))
    for name, why in report.rebuilt:
        print(f"rebuilt {name}: {why}")
    for path, why in report.skipped:
        print(f"skipped {why}" if str(path) in why else f"skipped {path}: {why}")
    print(summary_table(tables).to_string())


if __name__ == "__main__":
    main()
