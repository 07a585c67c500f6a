"""Pretraining learns on real EEG: the shared Mumtaz recordings, the default tokenizer stage, the real CLI.

The collapse this guards against: a tokenizer whose codebook shrinks to a handful of codes (or whose codes
the decoder ignores), after which masked modelling predicts an almost constant target and its accuracy
looks healthy while meaning nothing; and masked modelling that only learns the code frequencies: its
validation loss must get below the validation codes' own entropy, the best context-free guess.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, runs

SUBJECT = r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'"
LABEL = r"data.label_pattern='(?P<label>EC|EO)\.edf$'"


# Masked modelling long enough to learn from context: 10 x 30 steps (the default's 3 x 10 only fits the code
# frequencies), 64 codes (the default; at 512 the same 300 steps got 2% below the codes' entropy, at 64 about 6%),
# labram_small's pretraining lr 3e-3.
BUDGET = [
    "phases.pretrain.n_codes=64",
    "phases.pretrain.epochs=10",
    "phases.pretrain.max_batches_per_epoch=30",
]
N_CODES = 64


@pytest.mark.slow
def test_tokenizer_keeps_its_codes_and_masked_modelling_predicts_below_the_codes_entropy(
    mumtaz_mdd, tmp_path
):
    cmd = [sys.executable, "-m", "eegphase.run", "+pipeline=no_contrastive", "pipeline.phases=[pretrain]",
           "data=folder", f"data.root={mumtaz_mdd / 'edf'}", f"data.subjects_file={mumtaz_mdd / 'participants.csv'}",
           SUBJECT, LABEL, "aux_task=none", "progress=false", "hydra/job_logging=disabled", "n_jobs=1",
           *BUDGET]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=2400, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = runs(tmp_path)
    pretrain = table[table["tags.eegphase.phase"] == "pretrain"].iloc[0]
    usage = pretrain["metrics.tokenizer/val/codebook_usage"]
    perplexity = pretrain["metrics.tokenizer/val/codebook_perplexity"]
    assert usage >= 0.5, f"only {usage:.0%} of the {N_CODES} codes in use on the validation windows"
    assert perplexity >= 0.25 * N_CODES, f"codebook perplexity {perplexity:.0f}"
    entropy = pretrain["metrics.val/mem_code_entropy"]
    assert entropy == pytest.approx(math.log(perplexity), abs=0.5)  # val windows of the same tokenizer
    # the trivial predictor (training-window code frequencies) on training batches: no worse than a uniform
    # guess; it read 7.4-8.7 for 512 codes (ln 512 = 6.24) while it bincounted a histogram
    assert pretrain["metrics.train_epoch/mem_trivial_loss"] <= math.log(N_CODES)
    mem = pretrain["metrics.val/mem"]
    gap = pretrain["metrics.val/mem_entropy_gap"]
    assert gap == pytest.approx(1 - mem / entropy, rel=1e-6)
    # measured at these settings: 0.062 (and 0.065 with the amplitude-only tokenizer); the bench's gate is 0.10
    assert gap > 0.03, f"masked modelling {mem:.3f} vs the codes' entropy {entropy:.3f}: gap {gap:.3f}"
    assert mem < pretrain["metrics.val/mem_trivial_loss"]
