"""Multi-class soft Dice loss: one Dice per class over the batch, averaged over classes."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class ClassDiceLoss(nn.Module):
    """``1 - mean_c Dice_c`` on softmax probabilities, the loss form of the metric (mDice).

    mmseg's ``DiceLoss`` flattens all classes of an image into one Dice (ruled by background)
    and treats ``ignore_index`` as a class channel to drop. Here each class gets its own soft
    Dice over the whole batch, pixels labelled ``ignore_index`` count for nothing, and a class
    absent from the batch and not predicted scores 1 (``smooth``).

    Args:
        loss_weight: Multiplier of the loss.
        smooth: Added to numerator and denominator of each class's Dice.
        class_weight: Weights of the classes in the average (None: equal).
        ignore_index: Label of pixels that do not count.
        loss_name: Name in the logs (must start with ``loss_``).
    """

    def __init__(self, loss_weight: float = 1.0, smooth: float = 1.0,
                 class_weight: Optional[Sequence[float]] = None, ignore_index: int = 255,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.smooth = smooth
        self.class_weight = None if class_weight is None else [float(w) for w in class_weight]
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: Optional[torch.Tensor] = None, ignore_index: Optional[int] = None,
                **kwargs) -> torch.Tensor:
        """``pred``: (N, C, H, W) logits; ``target``: (N, H, W) class indices."""
        ignore = self.ignore_index if ignore_index is None else ignore_index
        num_classes = pred.shape[1]
        valid = (target != ignore).unsqueeze(1)
        prob = F.softmax(pred.float(), dim=1) * valid
        onehot = F.one_hot(target.masked_fill(~valid[:, 0], 0).long(), num_classes)
        onehot = onehot.permute(0, 3, 1, 2).to(prob.dtype) * valid
        dims = (0, 2, 3)
        inter = (prob * onehot).sum(dims)
        total = prob.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        if self.class_weight is None:
            loss = (1 - dice).mean()
        else:
            w = dice.new_tensor(self.class_weight)
            loss = ((1 - dice) * w).sum() / w.sum()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """The name mmseg's decode head logs the loss under."""
        return self._loss_name
