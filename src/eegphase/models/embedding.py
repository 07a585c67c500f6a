"""Row look-ups in learned tables with a deterministic backward pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_rows(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[rows]`` for ``rows`` (B, C), reproducible bit for bit.

    Indexing with repeated rows accumulates gradients with a threaded scatter-add whose summation order varies
    between runs on CPU, so identical runs drifted apart in the last bits. Rows shared by the whole batch (an
    expanded (C,) index, the usual case) are gathered once and broadcast; per-sample rows use a one-hot GEMM.
    """
    if rows.dim() == 2 and rows.stride(0) == 0:
        return table[rows[0]].unsqueeze(0).expand(rows.shape[0], -1, -1)
    return F.one_hot(rows, table.shape[0]).to(table.dtype) @ table
