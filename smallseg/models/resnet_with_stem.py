"""mmseg ResNet that also returns the stem features, for U-Net skip connections."""
from __future__ import annotations

from typing import Tuple

import torch
from mmseg.models.backbones import ResNet
from mmseg.registry import MODELS


@MODELS.register_module()
class ResNetWithStem(ResNet):
    """:class:`mmseg.models.backbones.ResNet` whose outputs start with the stem.

    Returns ``(stem, *stages)``: the stem activation at 1/2 resolution (before max-pool,
    64 channels) followed by the stages in ``out_indices`` (1/4 .. 1/32 for the default
    strides). Parameter names are unchanged, so torchvision/mmseg ResNet weights load as is.

    Args:
        **kwargs: :class:`mmseg.models.backbones.ResNet` arguments (``depth=34`` for U-Net-R34).
    """

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        outs = [x]
        x = self.maxpool(x)
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
