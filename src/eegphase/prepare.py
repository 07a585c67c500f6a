"""``python -m eegphase.prepare data=hbn data.root=DIR``: build the preprocessed cache and windows tables."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from eegphase.config import CONF_DIR
from eegphase.data.prepare_cache import prepare_from_config, summary_table


@hydra.main(config_path=str(CONF_DIR), config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    # the code path (and lock) of eegphase.run: a prepare racing a run waits for it instead of preprocessing too
    manifest, report, tables = prepare_from_config(cfg, cfg.get("modes") or None)
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
