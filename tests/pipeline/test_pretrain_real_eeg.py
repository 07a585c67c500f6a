"""Pretraining learns on real EEG: the shared Mumtaz recordings, the default tokenizer stage, the real CLI.

The collapse this guards against: a tokenizer whose codebook shrinks to a handful of codes (or whose codes
the decoder ignores), after which masked modelling predicts an almost constant target and its accuracy
looks healthy while meaning nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT, runs

SUBJECT = r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'"
LABEL = r"data.label_pattern='(?P<label>EC|EO)\.edf$'"


def test_default_tokenizer_keeps_its_codes_and_masked_modelling_beats_the_trivial_predictor(
    mumtaz_mdd, tmp_path
):
    cmd = [sys.executable, "-m", "eegphase.run", "+pipeline=no_contrastive", "pipeline.phases=[pretrain]",
           "data=folder", f"data.root={mumtaz_mdd / 'edf'}", f"data.subjects_file={mumtaz_mdd / 'participants.csv'}",
           SUBJECT, LABEL, "aux_task=none", "progress=false", "hydra/job_logging=disabled", "n_jobs=1"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = runs(tmp_path)
    pretrain = table[table["tags.eegphase.phase"] == "pretrain"].iloc[0]
    n_codes = 512
    usage = pretrain["metrics.tokenizer/val/codebook_usage"]
    perplexity = pretrain["metrics.tokenizer/val/codebook_perplexity"]
    assert usage >= 0.5, f"only {usage:.0%} of the {n_codes} codes in use on the validation windows"
    assert perplexity >= 0.25 * n_codes, f"codebook perplexity {perplexity:.0f}"
    mem, trivial = pretrain["metrics.val/mem"], pretrain["metrics.val/mem_trivial_loss"]
    assert mem < trivial - 0.2, f"masked-modelling loss {mem:.3f} vs {trivial:.3f} for the code frequencies"
    # the most frequent code is a rare answer, not what masked modelling learned to say
    assert pretrain["metrics.val/mem_trivial_accuracy"] < 0.05
