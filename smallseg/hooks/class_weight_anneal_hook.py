"""Anneal the cross-entropy class weights: strong class balance first, the config's later."""
from __future__ import annotations

from typing import Any, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..utils.config import head_losses


def weighted_losses(model: Any) -> list:
    """The losses of the model's decode and auxiliary heads that have a ``class_weight``."""
    return [loss for loss in head_losses(model)
            if getattr(loss, 'class_weight', None) is not None]


def annealed_weights(weights: list[float], power: float) -> list[float]:
    """``weights ** power`` rescaled to mean 1 (a weighted cross-entropy does not depend on
    the scale): power 2 turns ``'auto_sqrt'`` weights back into ``'auto'``'s proportions."""
    raised = [float(w) ** power for w in weights]
    mean = sum(raised) / len(raised)
    return [w / mean for w in raised]


@HOOKS.register_module()
class ClassWeightAnnealHook(Hook):
    """Raise the configured ``class_weight`` of each loss to ``start_power`` at the first
    iteration, then bring the power down linearly to 1 (the config's weights) by the fraction
    ``end`` of the run, and keep them from there.

    Why: trained from scratch with mild weights (``'auto_sqrt'``), a U-Net can sit at all
    background for many epochs, and some runs never recover; with the full median-frequency
    weights (``'auto'``) it finds the objects at once but takes much background for object.
    Strong weights first and mild weights later get both. The run's length is read at every
    iteration, so it follows :class:`TimeBudgetHook`, and a resumed run continues the curve.

    Args:
        start_power: Power of the configured weights at the start (2.0 on ``'auto_sqrt'``
            gives ``'auto'``).
        end: Fraction of the training iterations after which the configured weights apply.
    """

    priority = 'NORMAL'

    def __init__(self, start_power: float = 2.0, end: float = 0.5) -> None:
        if not 0 < end <= 1:
            raise ValueError(f'ClassWeightAnnealHook: end={end} must be in (0, 1]')
        self.start_power = float(start_power)
        self.end = float(end)
        self._weights: Optional[list[tuple[Any, list[float]]]] = None
        self._logged_power: Optional[float] = None

    def power_at(self, progress: float) -> float:
        """The power at ``progress`` (0..1) of the run."""
        t = min(1.0, max(0.0, progress / self.end))
        return self.start_power + (1.0 - self.start_power) * t

    def before_train(self, runner) -> None:
        self._weights = [(loss, [float(w) for w in loss.class_weight])
                         for loss in weighted_losses(runner.model)]
        if not self._weights:
            print_log('ClassWeightAnnealHook: no loss has a class_weight, nothing to anneal',
                      logger='current')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if not self._weights:
            return
        power = self.power_at(runner.iter / max(1, runner.max_iters))
        for loss, weights in self._weights:
            loss.class_weight = annealed_weights(weights, power)
        if batch_idx == 0 and power != self._logged_power:  # once an epoch while it changes
            shown = [round(w, 3) for w in annealed_weights(self._weights[0][1], power)]
            print_log(f'class weights at power {power:.2f} of the configured: {shown}',
                      logger='current')
            self._logged_power = power

    def after_train(self, runner) -> None:
        for loss, weights in self._weights or []:
            loss.class_weight = weights  # the configured weights, as the checkpoint's config
