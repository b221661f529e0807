"""Cross-entropy that accepts ignored label pixels together with class weights."""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS

from ..utils.errors import UserError

# class_weight values resolved from the training masks -> power of the median-frequency weights
AUTO_POWERS = {'auto': 1.0, 'auto_sqrt': 0.5}


def cross_entropy(pred: torch.Tensor,
                  label: torch.Tensor,
                  weight: Optional[torch.Tensor] = None,
                  class_weight: Optional[torch.Tensor] = None,
                  reduction: str = 'mean',
                  avg_factor: Optional[float] = None,
                  ignore_index: int = -100,
                  avg_non_ignore: bool = False,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """mmseg's ``cross_entropy`` with the class-weighted average fixed.

    mmseg computes the weighted average factor as ``class_weight[label]``, which raises
    IndexError on the ignore index (255, e.g. ``RandomRotate`` padding) and loops over the
    batch in Python. Here ignored pixels get weight 0 in one vectorised gather; the result
    equals mmseg's wherever mmseg does not crash (with ``avg_non_ignore=True`` it equals
    ``F.cross_entropy(..., weight=class_weight, reduction='mean')``). ``label_smoothing`` is
    PyTorch's: the target puts ``1 - eps`` on the label and ``eps`` spread over all classes.
    """
    if class_weight is not None:
        class_weight = class_weight.float()  # new_tensor() of a bf16 score under autocast
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction='none',
                           ignore_index=ignore_index, label_smoothing=label_smoothing)
    if avg_factor is None and reduction == 'mean':
        ignored = label == ignore_index
        if class_weight is None:
            avg_factor = label.numel() - (ignored.sum().item() if avg_non_ignore else 0)
        else:
            safe_label = label.masked_fill(ignored, 0)
            label_weights = class_weight[safe_label]
            if avg_non_ignore:
                label_weights = label_weights.masked_fill(ignored, 0)
            avg_factor = label_weights.sum()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class IgnoreSafeCrossEntropyLoss(CrossEntropyLoss):
    """``CrossEntropyLoss`` (same arguments) that works with ``class_weight`` and ignored pixels.

    Args:
        class_weight (list[float] | str, optional): Weight of each class, or a file of them,
            or ``'auto'`` / ``'auto_sqrt'``: median-frequency weights of the training masks
            (or their square roots), which the train tools write into the config before the
            model is built; an unresolved ``'auto'`` raises :class:`UserError`.
        avg_non_ignore (bool): Average over non-ignored pixels only. Defaults to True here,
            so the padding of rotations does not dilute the loss.
        label_smoothing (float): Share of each pixel's target spread over all classes
            (PyTorch's ``label_smoothing``), for softmax cross-entropy. Defaults to 0.
        **kwargs: Other :class:`mmseg.models.losses.CrossEntropyLoss` arguments.
    """

    def __init__(self, avg_non_ignore: bool = True, label_smoothing: float = 0.0,
                 **kwargs) -> None:
        weight = kwargs.get('class_weight')
        if isinstance(weight, str) and weight in AUTO_POWERS:
            raise UserError(
                f"IgnoreSafeCrossEntropyLoss: class_weight={weight!r} is computed from the "
                'training masks before the model is built; train through tools/train.py '
                '(tools/test.py and tools/infer.py take the value from the checkpoint), or '
                'set class_weight to a list of numbers')
        super().__init__(avg_non_ignore=avg_non_ignore, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f'IgnoreSafeCrossEntropyLoss: label_smoothing={label_smoothing} '
                            'is outside [0, 1); use e.g. 0.1, or 0 for none')
        if label_smoothing and (self.use_sigmoid or self.use_mask):
            raise UserError('IgnoreSafeCrossEntropyLoss: label_smoothing works with softmax '
                            'cross-entropy only; set use_sigmoid=False and use_mask=False')
        if not (self.use_sigmoid or self.use_mask):
            self.cls_criterion = partial(cross_entropy, label_smoothing=label_smoothing)
