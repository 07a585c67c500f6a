"""Keep freed CPU memory in the process so that training steps reuse pages instead of faulting in new ones.

glibc hands every block above its mmap threshold (128 KiB to 32 MiB) straight back to the kernel when it is
freed and trims the heap's free top. A training step frees its activations and allocates them again on the
next step, so each step page-faults hundreds of megabytes in afresh (about 160 000 minor faults per LaBraM-base
MEM step at batch 8 in bf16) and zero-fills them in the kernel. ``keep`` turns glibc's mmap path off and never
trims, which is what PyTorch's CUDA caching allocator does on GPUs: the process holds its peak memory, and
steady-state steps fault nothing. ``system`` leaves glibc's defaults. Other C libraries (macOS, musl) are left as
they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

CPU_ALLOCATORS = ("keep", "system")
_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def is_glibc() -> bool:
    """Whether this process runs on glibc (the only C library whose ``mallopt`` this module sets)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _glibc() -> ctypes.CDLL | None:
    if not is_glibc():
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def configure_cpu_allocator(mode: str) -> bool:
    """Apply ``cpu_allocator`` (keep | system) to this process; True when glibc now keeps freed memory.

    Process-wide and one-way for the blocks already returned; a DataLoader worker forked later inherits it.
    """
    if mode not in CPU_ALLOCATORS:
        raise ValueError(f"cpu_allocator={mode!r} is not one of {CPU_ALLOCATORS}")
    if mode == "system":
        return False
    libc = _glibc()
    if libc is None:
        log.debug("cpu_allocator=keep: not glibc, allocator left as it is")
        return False
    kept = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    if not kept:
        log.warning("cpu_allocator=keep: glibc refused mallopt; freed memory goes back to the kernel")
    return kept
