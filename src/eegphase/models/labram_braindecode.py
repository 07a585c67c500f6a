"""LaBraM weights from braindecode and from the official code, and ours back to braindecode's names.

``braindecode.models.Labram`` (checked against braindecode ``BRAINDECODE_CHECKED``) and the paper's own code
(github.com/935963004/LaBraM, ``modeling_finetune.NeuralTransformer``; pretraining checkpoints hold it under
``student.``) compute the function of our :class:`~eegphase.models.labram.LaBraM` built with
:func:`labram_options` (mean pooling with the final norm after it, q and v biases, per-sample patch statistics,
no patch spectrum). They name and shape the tensors differently:

- the temporal conv's ``Conv2d`` weights (out, in, 1, k) are our unfold GEMM's (out, in * k);
- their temporal-embedding row ``i`` is patch ``i``'s, with no row for the cls token; ours has row 0 for the
  cls token (set to zero here) and row ``i + 1`` for patch ``i``;
- their position embedding is indexed by LaBraM's channel order (``braindecode.models.labram.
  LABRAM_CHANNEL_ORDER``, row 0 the cls token's), ours by the electrode table (:mod:`eegphase.models.electrodes`):
  rows move by electrode name. 94 of the 128 names are in our table; the others (bipolar pairs such as FP1-F7,
  CFC*/CCP* intermediates, T1/T2, CB1/CB2, *h positions) do not map and are named. Feed our model the same
  channels with ``ch_idx = electrodes.electrode_index(ch_names)`` (what braindecode takes as ``ch_names``);
- q and k LayerNorms are stored stacked in ours (``attn.qk_norm``); braindecode's MLP is ``mlp.0``/``mlp.2``.

A classifier (braindecode's ``final_layer``, the official ``head``), the official pretraining's ``lm_head`` and
anything else without a counterpart are returned by name, not loaded.

HBN's HydroCel electrodes (E1..E128) have no LaBraM name: only Cz's spatial row comes from their weights, the
others keep the model's own (a nearest-position fill was not done: the two montages' nearest electrodes lie a
median 17 mm apart, up to 45 mm). The official code's training checkpoints also pickle its argparse arguments,
which ``torch.load(weights_only=True)`` refuses: load them under
``torch.serialization.safe_globals([argparse.Namespace])`` and save the ``model`` entry alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from eegphase.models import electrodes
from eegphase.models.labram import LaBraM

BRAINDECODE_CHECKED = "1.8.1"  # the braindecode release this mapping was checked against (tests pin it)
OFFICIAL_PREFIX = "student."  # the official pretraining checkpoint's encoder


def labram_options() -> dict[str, object]:
    """The LaBraM options that compute braindecode's / the paper's function (with their patch size and rate)."""
    return {"pooling": "mean", "final_norm": "pooled", "qkv_bias": "qv", "patch_norm": "sample"}


def labram_channel_order() -> list[str]:
    """The channel names LaBraM's position embedding rows 1.. stand for (braindecode's and the official's)."""
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER

    return list(LABRAM_CHANNEL_ORDER)


def electrode_rows() -> tuple[dict[int, int], list[str]]:
    """LaBraM channel position -> our electrode-table index, for the names both know; and the names we lack."""
    table = {name.upper(): i for i, name in enumerate(electrodes.electrode_names())}
    rows, missing = {}, []
    for position, name in enumerate(labram_channel_order()):
        if name.upper() in table:
            rows[position] = table[name.upper()]
        else:
            missing.append(name)
    return rows, missing


def foreign_flavour(state: Mapping[str, torch.Tensor]) -> str | None:
    """``"braindecode"``, ``"official"`` (with or without ``student.``) or None (ours, or not a LaBraM)."""
    if "position_embedding" in state or any(k.startswith("patch_embed.temporal_conv.") for k in state):
        return "braindecode"
    if any(k in state for k in ("pos_embed", "time_embed", OFFICIAL_PREFIX + "pos_embed")):
        return "official"
    return None


_CONV = re.compile(r"patch_embed\.(?:temporal_conv\.)?(conv[123])\.(weight|bias)")
_NORM = re.compile(r"patch_embed\.(?:temporal_conv\.)?(norm[123]\.(?:weight|bias))")
_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")
_SAME_IN_BLOCK = {
    "norm1",
    "norm2",
    "gamma_1",
    "gamma_2",
    "attn.qkv",
    "attn.proj",
    "attn.q_bias",
    "attn.v_bias",
}
_MLP = {"mlp.0": "mlp.fc1", "mlp.2": "mlp.fc2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


def to_eegphase(
    state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A braindecode or official LaBraM state dict -> ours, shaped as ``own`` (the target LaBraM's state dict).

    Tensors only partly covered (the spatial and temporal embeddings) start from ``own``'s values: our electrodes
    LaBraM has no row for keep theirs. Returns (our state dict, what did not map: their keys, and
    ``position_embedding[NAME]`` for each channel row our electrode table lacks).
    """
    state = {k.removeprefix(OFFICIAL_PREFIX): v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    biases: dict[str, dict[str, torch.Tensor]] = {}
    norms: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if conv := _CONV.fullmatch(key):
            layer, kind = conv.groups()
            out[f"patch_embed.{layer}.linear.{kind}"] = value.flatten(1) if kind == "weight" else value
        elif norm := _NORM.fullmatch(key):
            out[f"patch_embed.{norm.group(1)}"] = value
        elif key in ("cls_token", "mask_token"):
            out[key] = value
        elif key in ("position_embedding", "pos_embed"):
            out["pos_embed.spatial"], missing = _spatial_rows(value, own["pos_embed.spatial"])
            unmapped += [f"{key}[{name}]" for name in missing]
        elif key in ("temporal_embedding", "time_embed"):
            out["pos_embed.temporal"] = _temporal_rows(value, own["pos_embed.temporal"])
        elif key in ("norm.weight", "norm.bias", "fc_norm.weight", "fc_norm.bias"):
            out["norm." + key.rsplit(".", 1)[1]] = value
        elif block := _BLOCK.fullmatch(key):
            index, rest = block.groups()
            module, _, kind = rest.rpartition(".")
            if rest in ("attn.q_bias", "attn.v_bias"):
                biases.setdefault(index, {})[rest[5]] = value
            elif module in ("attn.q_norm", "attn.k_norm"):
                norms.setdefault(f"blocks.{index}.attn.qk_norm.{kind}", {})[module[5]] = value
            elif module in _SAME_IN_BLOCK or rest in _SAME_IN_BLOCK:
                out[f"blocks.{index}.{rest}"] = value
            elif module in _MLP:
                out[f"blocks.{index}.{_MLP[module]}.{kind}"] = value
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    for name, pair in norms.items():
        out[name] = torch.stack([pair["q"], pair["k"]]).view(2, 1, 1, 1, -1)
    for index, pair in biases.items():
        prefix = f"blocks.{index}.attn."
        if prefix + "q_bias" in own:  # ours with qkv_bias="qv"
            out.update({prefix + f"{w}_bias": pair[w] for w in pair})
        elif prefix + "qkv.bias" in own:  # ours with three biases: the key's zero
            out[prefix + "qkv.bias"] = torch.cat([pair["q"], torch.zeros_like(pair["q"]), pair["v"]])
        else:
            unmapped += [f"blocks.{index}.attn.{w}_bias" for w in pair]
    return out, unmapped


def _spatial_rows(theirs: torch.Tensor, own: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """Their (1, 1 + n_channels, D) position embedding -> our (1 + n_electrodes, D) spatial table, by name;
    and the names of their rows our table has no electrode for."""
    theirs = theirs.reshape(-1, theirs.shape[-1])
    if theirs.shape[-1] != own.shape[-1]:
        return theirs, []  # a width that does not fit: the loader names the shape mismatch
    rows, missing = electrode_rows()
    names = labram_channel_order()[: theirs.shape[0] - 1]
    out = own.detach().clone()
    out[0] = theirs[0]
    for position, electrode in rows.items():
        if position < len(names) and electrode + 1 < out.shape[0]:
            out[electrode + 1] = theirs[position + 1]
    return out, [name for name in missing if name in names]


def _temporal_rows(theirs: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """Their (1, R, D) temporal embedding (row i: patch i) -> our (1 + max_time_patches, D) (row 0: cls, zero)."""
    theirs = theirs.reshape(-1, theirs.shape[-1])
    if theirs.shape[-1] != own.shape[-1]:
        return theirs
    out = own.detach().clone()
    n = min(theirs.shape[0], out.shape[0] - 1)
    out[0] = 0.0
    out[1 : n + 1] = theirs[:n]
    return out


def to_braindecode(
    ours: Mapping[str, torch.Tensor], template: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Our LaBraM state dict -> braindecode's names and shapes, with ``template`` (a braindecode Labram's state
    dict) supplying the rows ours has no electrode for and the keys ours lacks. Our cls-row temporal embedding
    joins the cls token (braindecode has no such row; the sum is what the cls token sees either way).
    Returns (their state dict, our keys that have no braindecode counterpart).
    """
    out = {k: v.detach().clone() for k, v in template.items()}
    rows, _ = electrode_rows()
    unmapped: list[str] = []
    for key, value in ours.items():
        if conv := re.fullmatch(r"patch_embed\.(conv[123])\.linear\.(weight|bias)", key):
            layer, kind = conv.groups()
            name = f"patch_embed.temporal_conv.{layer}.{kind}"
            out[name] = value.view_as(template[name])
        elif key.startswith("patch_embed.norm"):
            out[key.replace("patch_embed.", "patch_embed.temporal_conv.")] = value
        elif key == "cls_token":
            out[key] = value + ours["pos_embed.temporal"][0].view(1, 1, -1)
        elif key == "pos_embed.spatial":
            table = out["position_embedding"]
            table[0, 0] = value[0]
            for position, electrode in rows.items():
                if position + 1 < table.shape[1]:
                    table[0, position + 1] = value[electrode + 1]
        elif key == "pos_embed.temporal":
            table = out["temporal_embedding"]
            n = min(table.shape[1], value.shape[0] - 1)
            table[0, :n] = value[1 : n + 1]
        elif key.startswith("norm."):
            name = ("fc_norm." if "fc_norm.weight" in template else "norm.") + key.split(".", 1)[1]
            out[name] = value
        elif block := _BLOCK.fullmatch(key):
            index, rest = block.groups()
            module, _, kind = rest.rpartition(".")
            if module == "attn.qk_norm":
                out[f"blocks.{index}.attn.q_norm.{kind}"] = value[0].flatten()
                out[f"blocks.{index}.attn.k_norm.{kind}"] = value[1].flatten()
            elif module in ("mlp.fc1", "mlp.fc2"):
                out[f"blocks.{index}.mlp.{'0' if module == 'mlp.fc1' else '2'}.{kind}"] = value
            elif f"blocks.{index}.{rest}" in template:
                out[f"blocks.{index}.{rest}"] = value
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    return out, unmapped


def from_braindecode(module: nn.Module) -> LaBraM:
    """Our LaBraM computing what ``module`` (a ``braindecode.models.Labram``) computes up to its classifier
    (``final_layer``, left out): same sizes, options and weights. Its channels go in with ``ch_idx =
    electrodes.electrode_index(ch_names)``; a name our table lacks (see the module docstring) cannot."""
    segment = module.patch_embed[0]
    if not getattr(module, "neural_tokenizer", False) or getattr(segment, "learned_patcher", False):
        raise ValueError(
            "from_braindecode takes a Labram with neural_tokenizer=True and learned_patcher=False"
        )
    if module.position_embedding is None:
        raise ValueError("from_braindecode takes a Labram with use_abs_pos_emb=True (a position embedding)")
    first = module.blocks[0]
    if first.attn.q_norm is None:
        raise ValueError("from_braindecode takes a Labram with qk_norm (our blocks always normalise q and k)")
    mean_pooling = module.fc_norm is not None
    ours = LaBraM(
        n_chans=module.n_chans,
        n_times=module.n_times,
        patch_size=module.patch_size,
        embed_dim=module.embed_dim,
        depth=len(module.blocks),
        num_heads=first.attn.num_heads,
        mlp_ratio=first.mlp[0].out_features / module.embed_dim,
        qkv_bias="qv" if first.attn.q_bias is not None else False,
        init_values=0.1 if first.gamma_1 is not None else None,
        max_time_patches=module.temporal_embedding.shape[1],
        pooling="mean" if mean_pooling else "cls",
        final_norm="pooled" if mean_pooling else "tokens",
        patch_norm="sample",
        conv_channels=module.patch_embed[1].conv1.out_channels,
    )
    state, unmapped = to_eegphase(module.state_dict(), ours.state_dict())
    unmapped = [
        k for k in unmapped if not k.startswith("final_layer.") and not k.startswith("position_embedding[")
    ]
    if unmapped:
        raise ValueError(f"braindecode Labram tensors without a counterpart in ours: {unmapped}")
    result = ours.load_state_dict(state, strict=False)
    if set(result.missing_keys) - {"mask_token"} or result.unexpected_keys:
        raise ValueError(
            f"from_braindecode left {result.missing_keys} unset, {result.unexpected_keys} unused"
        )
    return ours
