"""U-Net decoder for a ResNet encoder (the segmentation_models_pytorch ``Unet`` design)."""
from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS


class UNetDecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip (if any), two 3x3 conv-norm-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 conv_cfg: dict | None, norm_cfg: dict | None, act_cfg: dict | None) -> None:
        super().__init__()
        kw = dict(kernel_size=3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels + skip_channels, out_channels, **kw)
        self.conv2 = ConvModule(out_channels, out_channels, **kw)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        size = skip.shape[2:] if skip is not None else [s * 2 for s in x.shape[2:]]
        x = F.interpolate(x, size=size, mode='nearest')
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


@MODELS.register_module()
class UNetHead(BaseDecodeHead):
    """U-Net decoder with a skip connection from every encoder stage.

    Takes all encoder features, deepest last (e.g. from :class:`ResNetWithStem`:
    stem 1/2, stages 1/4..1/32). The deepest map is upsampled step by step, each step
    concatenated with the next shallower feature; ``extra_upsamples`` blocks without a skip
    follow (one, to return to full resolution from a 1/2 stem), then ``conv_seg``.

    Args:
        in_channels (Sequence[int]): Channels of each encoder feature, shallow to deep,
            e.g. ``[64, 64, 128, 256, 512]`` for ResNet-34.
        decoder_channels (Sequence[int]): Output channels of each decoder block, deep to
            shallow, e.g. ``(256, 128, 64, 32, 16)``. Its length is the number of skips plus
            ``extra_upsamples``. ``channels`` (the classifier input) is the last of them.
        extra_upsamples (int): Decoder blocks after the last skip. Defaults to 1.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``, ``loss_decode``...).
    """

    def __init__(self, in_channels: Sequence[int],
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
                 extra_upsamples: int = 1, **kwargs) -> None:
        in_channels = list(in_channels)
        kwargs.setdefault('in_index', list(range(len(in_channels))))
        kwargs.setdefault('input_transform', 'multiple_select')
        super().__init__(in_channels=in_channels, channels=decoder_channels[-1], **kwargs)
        skips = in_channels[-2::-1]  # shallower features, deep to shallow
        if len(decoder_channels) != len(skips) + extra_upsamples:
            raise ValueError(
                f'decoder_channels needs {len(skips) + extra_upsamples} entries '
                f'({len(skips)} skips + {extra_upsamples} extra), got {len(decoder_channels)}')
        skip_channels = skips + [0] * extra_upsamples
        block_in = [in_channels[-1]] + list(decoder_channels[:-1])
        self.blocks = nn.ModuleList(
            UNetDecoderBlock(i, s, o, self.conv_cfg, self.norm_cfg, self.act_cfg)
            for i, s, o in zip(block_in, skip_channels, decoder_channels))

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        feats = self._transform_inputs(inputs)
        x = feats[-1]
        skips = feats[-2::-1]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return self.cls_seg(x)
