"""Errors the engine raises, in one place so that phases and the transfer helpers share them."""

from __future__ import annotations


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message names the file and what is wrong with it."""


class NonFiniteLossError(Exception):
    """The loss became NaN or infinite; training stops instead of silently corrupting the weights."""
