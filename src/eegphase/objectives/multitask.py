"""Multi-task composition: L = L_main + sum_k w_k * L_aux_k, with every term returned for logging.

Auxiliary targets (p_factor, age, sex, ...) are often missing for some subjects. Each term uses the
NaN-masked losses of :mod:`eegphase.objectives.regression`, so a batch in which an auxiliary target is
entirely missing adds an exact zero and keeps the gradient finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from eegphase.objectives.regression import loss_by_name


@dataclass(frozen=True)
class TaskSpec:
    """One prediction target: the model output called ``name`` is compared with the target ``name``."""

    name: str
    loss: str = "mse"
    weight: float = 1.0
    huber_delta: float = 1.0


@dataclass
class MultiTaskResult:
    """The total to backpropagate and each unweighted term (detached) under its task name."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    def log_dict(self, prefix: str = "loss/") -> dict[str, float]:
        """Plain floats for a tracker: the total and every term."""
        out = {f"{prefix}total": float(self.total.detach())}
        out.update({f"{prefix}{name}": float(value) for name, value in self.terms.items()})
        return out


def compose_losses(
    main_name: str, main: torch.Tensor, aux: Mapping[str, tuple[torch.Tensor, float]]
) -> MultiTaskResult:
    """Weighted sum of an already computed main loss and auxiliary losses ``{name: (loss, weight)}``."""
    if main_name in aux:
        raise ValueError(f"auxiliary task {main_name!r} has the same name as the main task")
    total = main
    terms = {main_name: main.detach()}
    weights = {main_name: 1.0}
    for name, (loss, weight) in aux.items():
        total = total + weight * loss
        terms[name] = loss.detach()
        weights[name] = float(weight)
    return MultiTaskResult(total=total, terms=terms, weights=weights)


class MultiTaskLoss:
    """Computes the main and auxiliary losses from dicts of predictions and targets keyed by task name.

    The main task's weight is fixed at 1; its missing targets are masked the same way as the others'.
    """

    def __init__(self, main: TaskSpec, aux: list[TaskSpec] | tuple[TaskSpec, ...] = ()):
        names = [main.name, *(spec.name for spec in aux)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique, repeated: {duplicates}")
        for spec in aux:
            if spec.weight < 0:
                raise ValueError(f"auxiliary task {spec.name!r} has a negative weight {spec.weight}")
        self.main = main
        self.aux = tuple(aux)
        self._fns = {spec.name: loss_by_name(spec.loss, spec.huber_delta) for spec in (main, *aux)}

    @property
    def task_names(self) -> tuple[str, ...]:
        return (self.main.name, *(spec.name for spec in self.aux))

    def __call__(
        self, predictions: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> MultiTaskResult:
        for name in self.task_names:
            if name not in predictions:
                raise KeyError(f"no prediction for task {name!r}; the model returned {sorted(predictions)}")
            if name not in targets:
                raise KeyError(f"no target for task {name!r}; the batch holds {sorted(targets)}")
        main_loss = self._fns[self.main.name](predictions[self.main.name], targets[self.main.name])
        aux_losses = {
            spec.name: (self._fns[spec.name](predictions[spec.name], targets[spec.name]), spec.weight)
            for spec in self.aux
        }
        return compose_losses(self.main.name, main_loss, aux_losses)
