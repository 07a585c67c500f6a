"""Any braindecode model as an eegphase encoder: (batch, n_chans, n_times) -> (batch, embed_dim).

A braindecode model ends in ``final_layer``, which maps its features to ``n_outputs`` scores.
``BraindecodeEncoder`` replaces that layer with the identity and flattens what reached it, so the encoder
gives the features the model's own readout reads, and eegphase's heads do the reading (a regression or
classification head, then the closed-form readout refit). Why drop the layer rather than build the model
with ``n_outputs=embed_dim``: in most braindecode models it is one linear map (EEGNeX: a max-norm linear;
ShallowFBCSPNet: a convolution over the whole remaining time axis, a linear map of the flattened features),
so keeping it would put a random linear bottleneck of a made-up width (and, in EEGNeX, a max-norm cap) in
front of a head that does the same job. ``embed_dim`` keeps it, as an ``n_outputs=embed_dim`` projection,
for a model without a ``final_layer`` or whose final layer does more than read out.

Inputs are what every eegphase encoder sees: windows on the HydroCel-129 layout (``channel_adapter:
zero_pad``, the default) or the adapter's 129 latent channels (``perceiver``), 200 samples at 100 Hz. Models
that need ``chs_info`` (electrode names and positions) are not supported.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# braindecode's EEGPT builds an MNE montage at import, under a name MNE 1.13 deprecates
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from braindecode import models as braindecode_models


def braindecode_model_class(name: str) -> type[nn.Module]:
    """The class ``braindecode.models.<name>``; an unknown name is an error naming it."""
    cls = getattr(braindecode_models, name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(
            f"braindecode.models has no model {name!r} (e.g. EEGNeX, ShallowFBCSPNet, Deep4Net, EEGConformer)"
        )
    return cls


class BraindecodeEncoder(nn.Module):
    """``braindecode.models.<model_class>`` without its final layer: (B, n_chans, n_times) -> (B, embed_dim).

    ``model_kwargs`` go to the braindecode model as they are (its own arguments, e.g. ``drop_prob``);
    ``embed_dim`` set: keep the final layer as an ``n_outputs=embed_dim`` projection (see the module docstring).
    """

    def __init__(
        self,
        model_class: str,
        n_chans: int = 129,
        n_times: int = 200,
        sfreq: float = 100.0,
        embed_dim: int | None = None,
        **model_kwargs,
    ):
        super().__init__()
        cls = braindecode_model_class(model_class)
        self.n_chans, self.n_times = n_chans, n_times
        # n_outputs=1 when the final layer is dropped: it only sizes a layer that is then discarded
        self.model = cls(
            n_chans=n_chans, n_times=n_times, sfreq=sfreq, n_outputs=embed_dim or 1, **model_kwargs
        )
        if embed_dim is None:
            if not isinstance(getattr(self.model, "final_layer", None), nn.Module):
                raise ValueError(
                    f"braindecode's {model_class} has no final_layer to drop: set embed_dim to use its output "
                    "(n_outputs=embed_dim) as the embedding"
                )
            self.model.final_layer = nn.Identity()
            embed_dim = self._feature_width()
        self.embed_dim = int(embed_dim)

    def _feature_width(self) -> int:
        """The flattened width of the features for one window (an eval-mode pass: no statistics change)."""
        training = self.model.training
        self.model.eval()
        with torch.no_grad():
            width = self.model(torch.zeros(1, self.n_chans, self.n_times)).flatten(1).shape[1]
        self.model.train(training)
        return width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)
