"""Auxiliary heads' losses: L = L_ssl + sum_k w_k L_k, each term NaN-masked and returned for logging.

Auxiliary targets (p_factor, age, sex) are often missing for some subjects. Each term uses the NaN-masked
losses of :mod:`eegphase.objectives.regression`, so a batch in which a target is entirely missing adds an
exact zero and keeps the gradient finite. Regression targets are standardised with fixed constants so that
their losses are on the scale of the self-supervised loss.
"""

from __future__ import annotations

import torch

from eegphase.objectives.regression import loss_by_name

AUX_NORMALISATION = {"age": (12.0, 4.0), "p_factor": (0.0, 1.0)}
AUX_TASKS = ("p_factor", "age", "sex")  # the heads of models.heads.AuxiliaryHeads


class AuxiliaryObjective:
    """NaN-masked auxiliary losses for the tasks that ``aux_task`` weights (an empty dict: no heads)."""

    def __init__(self, tasks: dict, target_names: list[str]):
        unknown = sorted(set(tasks) - set(AUX_TASKS))
        if unknown:
            raise KeyError(f"aux_task.tasks has unknown task(s) {unknown}; known: {', '.join(AUX_TASKS)}")
        self.tasks = {
            name: (float(spec["weight"]), loss_by_name(spec["loss"])) for name, spec in tasks.items()
        }
        self.columns = {name: target_names.index(name) for name in self.tasks}

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def losses(self, predictions: dict[str, torch.Tensor], y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted losses of the heads' ``predictions`` against the target columns of ``y``."""
        losses = {}
        for name, (weight, loss_fn) in self.tasks.items():
            target = y[:, self.columns[name]]
            if name in AUX_NORMALISATION:
                mean, std = AUX_NORMALISATION[name]
                target = (target - mean) / std
            losses[f"aux_{name}"] = weight * loss_fn(predictions[name], target)
        return losses
