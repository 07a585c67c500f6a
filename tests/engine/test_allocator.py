"""cpu_allocator=keep: memory freed by one step is reused by the next without page faults (real glibc, real
processes: the setting is process-wide, so each case runs in its own interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from eegphase.engine.allocator import configure_cpu_allocator, is_glibc

glibc_only = pytest.mark.skipif(not is_glibc(), reason="mallopt is glibc's")

# A step's worth of allocation: a 64 MiB activation allocated, filled and freed, step after step. A step's minor
# page faults are what it pays when the allocator gave the memory back. Under ``keep`` the first few steps
# still grow the heap (torch's 64-byte-aligned request does not fit the exact-size chunk freed before it), and
# from then on the coalesced free chunks serve every step.
SCRIPT = """
import json, resource, sys
import torch
from eegphase.engine.allocator import configure_cpu_allocator
kept = configure_cpu_allocator(sys.argv[1])
def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(16 * 2**20, dtype=torch.float32)  # 64 MiB
    x.fill_(1.0)
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults = [faults_of_one_step() for _ in range(12)]
print(json.dumps({"kept": kept, "faults": faults[-3:]}))
"""
PAGES = 16 * 2**20 * 4 // 4096


def _run(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_keep_reuses_freed_memory_without_page_faults():
    kept, system = _run("keep"), _run("system")
    assert kept["kept"] is True and system["kept"] is False
    # glibc's default gives the 64 MiB block back on free: every step faults all its pages in again
    assert min(system["faults"]) >= 0.9 * PAGES, system
    assert max(kept["faults"]) < 0.05 * PAGES, kept


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match=r"cpu_allocator='fast' is not one of \('keep', 'system'\)"):
        configure_cpu_allocator("fast")
