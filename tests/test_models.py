"""Model parts: every config builds, runs forward/backward; U-Net decoder; the fixed loss."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.registry import MODELS

from smallseg.apis.test import settle_auto
from smallseg.models.cross_entropy_loss import cross_entropy
from smallseg.utils.errors import UserError

CONFIGS = sorted(str(p) for p in Path(__file__).resolve().parents[1].glob('configs/*.py'))


def build(config: str) -> torch.nn.Module:
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    settle_auto(cfg, None)  # 'auto' values as test and inference settle them without a record
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('config', CONFIGS, ids=lambda c: Path(c).stem)
def test_config_builds_and_runs_forward_backward(config: str) -> None:
    model = build(config)
    x = torch.randn(2, 3, 64, 64)
    logits = model(x, mode='tensor')
    assert logits.shape[:2] == (2, 3)
    logits.float().mean().backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), 'encoder did not receive gradients'


def test_unet_uses_every_encoder_stage() -> None:
    model = build('configs/unet_r34.py')
    feats = model.backbone(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 64, 128, 256, 512]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
    logits = model.decode_head(feats)
    assert logits.shape == (1, 3, 64, 64), 'decoder returns full resolution'
    # each skip feeds a decoder block: channel counts of the block inputs include the skips
    in_ch = [b.conv1.conv.in_channels for b in model.decode_head.blocks]
    assert in_ch == [512 + 256, 256 + 128, 128 + 64, 64 + 64, 32]


def test_unet_head_rejects_wrong_decoder_channels() -> None:
    with pytest.raises(ValueError, match='decoder_channels needs 5'):
        MODELS.build(dict(type='UNetHead', in_channels=[64, 64, 128, 256, 512],
                          decoder_channels=(256, 128), num_classes=3))


def test_weighted_loss_accepts_ignored_pixels() -> None:
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 8, 8, requires_grad=True)
    label = torch.randint(0, 3, (2, 8, 8))
    label[:, :2] = 255  # rotation padding
    loss = MODELS.build(dict(type='IgnoreSafeCrossEntropyLoss', class_weight=[0.1, 1.0, 1.0]))
    value = loss(pred, label, ignore_index=255)
    weight = torch.tensor([0.1, 1.0, 1.0])
    expected = F.cross_entropy(pred, label, weight=weight, ignore_index=255)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('class_weight', [None, [0.2, 1.0, 1.5]])
def test_label_smoothing_is_pytorchs_with_ignored_pixels(class_weight) -> None:
    torch.manual_seed(2)
    pred = torch.randn(2, 3, 8, 8)
    label = torch.randint(0, 3, (2, 8, 8))
    label[:, -2:] = 255
    loss = MODELS.build(dict(type='IgnoreSafeCrossEntropyLoss', class_weight=class_weight,
                             label_smoothing=0.1))
    weight = None if class_weight is None else torch.tensor(class_weight)
    expected = F.cross_entropy(pred, label, weight=weight, ignore_index=255, label_smoothing=0.1)
    plain = F.cross_entropy(pred, label, weight=weight, ignore_index=255)
    assert not torch.isclose(expected, plain)
    torch.testing.assert_close(loss(pred, label, ignore_index=255), expected)


@pytest.mark.parametrize('kwargs,match', [
    (dict(label_smoothing=1.0), r'label_smoothing=1.0 is outside \[0, 1\)'),
    (dict(label_smoothing=0.1, use_sigmoid=True), 'softmax cross-entropy only'),
])
def test_label_smoothing_rejects_what_it_cannot_do(kwargs, match) -> None:
    with pytest.raises(UserError, match=match):
        MODELS.build(dict(type='IgnoreSafeCrossEntropyLoss', **kwargs))


def test_loss_matches_mmseg_where_mmseg_works() -> None:
    from mmseg.models.losses.cross_entropy_loss import cross_entropy as mmseg_ce
    torch.manual_seed(1)
    pred = torch.randn(2, 3, 8, 8)
    label = torch.randint(0, 3, (2, 8, 8))
    weight = torch.tensor([0.1, 1.2, 1.2])
    for avg_non_ignore in (False, True):
        ours = cross_entropy(pred, label, class_weight=weight, ignore_index=255,
                             avg_non_ignore=avg_non_ignore)
        theirs = mmseg_ce(pred, label, class_weight=weight, ignore_index=255,
                          avg_non_ignore=avg_non_ignore)
        torch.testing.assert_close(ours, theirs)
    label[0, 0, 0] = 255
    with pytest.raises(IndexError):  # the upstream bug this loss exists for
        mmseg_ce(pred, label, class_weight=weight, ignore_index=255)
