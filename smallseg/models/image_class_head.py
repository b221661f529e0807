"""Image-level foreground class from the encoder's deepest features (an auxiliary head)."""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import SampleList

from ..utils.errors import UserError


def image_class_targets(data_samples: SampleList, num_classes: int) -> torch.Tensor:
    """Each image's foreground class, 0-based over classes ``1..num_classes-1``: the most
    frequent foreground label of its mask (255 and out-of-range values left out); -1 for an
    image without foreground."""
    targets = []
    for sample in data_samples:
        labels = sample.gt_sem_seg.data.flatten().long()
        labels = labels[(labels > 0) & (labels < num_classes)]
        targets.append(int(torch.bincount(labels, minlength=num_classes)[1:].argmax())
                       if labels.numel() else -1)
    return torch.tensor(targets, dtype=torch.long)


@MODELS.register_module()
class ImageClassHead(BaseModule):
    """Global average pooling, dropout and a linear layer over one encoder stage.

    For datasets whose images hold one object of one class: it predicts the image's foreground
    class. In ``EncoderDecoder``'s ``auxiliary_head`` slot it trains jointly with the
    segmentation (cross-entropy, logged as ``aux.loss_cls`` and ``aux.acc_cls``; images
    without foreground are left out), and ``ObjectPriorEncoderDecoder`` with
    ``test_cfg.class_from='head'`` gives the foreground the class it predicts.

    Args:
        in_channels: Channels of the stage it reads (2048 for a ResNet-50's last).
        num_classes: The segmentation classes, background included (it predicts the rest).
        in_index: Which encoder output it reads; default the deepest.
        dropout_ratio: Dropout before the linear layer.
        loss_weight: Weight of its loss beside the segmentation losses.
    """

    def __init__(self, in_channels: int, num_classes: int, in_index: int = -1,
                 dropout_ratio: float = 0.1, loss_weight: float = 0.4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if num_classes < 3:
            raise UserError('model.auxiliary_head (ImageClassHead) needs two foreground classes '
                            f'or more: num_classes is {num_classes}; use the vote (no head)')
        self.num_classes, self.in_index, self.loss_weight = num_classes, in_index, loss_weight
        self.dropout = nn.Dropout(dropout_ratio)
        self.fc = nn.Linear(in_channels, num_classes - 1)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Logits ``(N, num_classes - 1)`` over the foreground classes."""
        return self.fc(self.dropout(inputs[self.in_index].mean(dim=(2, 3))))

    def loss(self, inputs: List[torch.Tensor], data_samples: SampleList,
             train_cfg: Optional[dict] = None) -> dict:
        logits = self.forward(inputs).float()
        targets = image_class_targets(data_samples, self.num_classes).to(logits.device)
        valid = targets >= 0
        if not bool(valid.any()):  # keep the head in the graph: DDP expects every parameter
            return dict(loss_cls=logits.sum() * 0.0, acc_cls=logits.new_zeros(()))
        loss = F.cross_entropy(logits[valid], targets[valid])
        acc = (logits[valid].argmax(1) == targets[valid]).float().mean() * 100
        return dict(loss_cls=loss * self.loss_weight, acc_cls=acc.detach())

    def predict_probs(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Foreground class probabilities ``(N, num_classes - 1)``."""
        return self.forward(inputs).float().softmax(dim=1)
