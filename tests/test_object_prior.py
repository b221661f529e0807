"""The one-object prior: the label rule, its segmentor, the flip of --tta, and 'auto'."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

from smallseg.apis.config import load_config, set_data_root
from smallseg.apis.class_weights import settle_class_weights
from smallseg.apis.object_prior import resolve_object_prior, settle_object_prior
from smallseg.apis.test import set_flip, settle_auto
from smallseg.models import apply_object_prior
from smallseg.utils.errors import UserError

from conftest import tiny_options


def two_blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities of a 3-class 8x8 image: a large blob, mostly class 1 with a class-2
    corner, and a small separate class-2 blob."""
    probs = torch.tensor([0.9, 0.05, 0.05])[:, None, None].repeat(1, 8, 8)
    probs[:, 1:5, 1:5] = torch.tensor([0.1, 0.8, 0.1])[:, None, None]
    probs[:, 1, 1] = torch.tensor([0.1, 0.3, 0.6])
    probs[:, 6:8, 6:8] = torch.tensor([0.2, 0.1, 0.7])[:, None, None]
    return probs, probs.argmax(dim=0)


def test_prior_keeps_the_largest_object_in_one_class() -> None:
    probs, pred = two_blobs()
    assert set(pred.unique().tolist()) == {0, 1, 2}
    out = apply_object_prior(probs, pred)
    expected = torch.zeros(8, 8, dtype=pred.dtype)
    expected[1:5, 1:5] = 1
    assert torch.equal(out, expected)


def test_prior_parts_act_alone_and_leave_background_images() -> None:
    probs, pred = two_blobs()
    only_largest = apply_object_prior(probs, pred, one_class=False, largest_object=True)
    assert only_largest[1, 1] == 2 and only_largest[6:8, 6:8].eq(0).all()
    only_class = apply_object_prior(probs, pred, one_class=True, largest_object=False)
    assert only_class[6, 6] == 1 and only_class[1, 1] == 1
    background = torch.zeros(8, 8, dtype=torch.long)
    assert torch.equal(apply_object_prior(probs, background), background)


def unet(test_cfg: dict, **model: dict) -> torch.nn.Module:
    cfg = load_config('configs/unet_r34.py', tiny_options())
    settle_auto(cfg, None)  # 'auto' as test and inference settle it without a record
    cfg.model.test_cfg.update(test_cfg)
    cfg.model.update(model)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


@pytest.mark.parametrize('on', [True, False])
def test_segmentor_applies_the_prior_of_its_test_cfg(on: bool) -> None:
    probs, _ = two_blobs()
    model = unet(dict(one_class=on, largest_object=on))
    sample = SegDataSample(metainfo=dict(ori_shape=(8, 8), img_shape=(8, 8),
                                         padding_size=[0, 0, 0, 0]))
    [result] = model.postprocess_result(probs.log()[None], [sample])
    labels = set(result.pred_sem_seg.data.unique().tolist())
    assert labels == ({0, 1} if on else {0, 1, 2})
    assert torch.allclose(result.seg_logits.data, probs.log())  # the network's own logits


@pytest.mark.parametrize('flip', [True, False])
def test_flip_averages_the_image_and_its_mirror(flip: bool) -> None:
    torch.manual_seed(0)
    model = unet(dict(flip=flip))
    inputs = torch.randn(2, 3, 32, 32)
    metas = [dict(ori_shape=(32, 32), img_shape=(32, 32))] * 2
    with torch.no_grad():
        logits = model.inference(inputs, metas)
        mirrored = model.inference(inputs.flip(-1), metas).flip(-1)
    # with flip, the prediction of a mirrored image is the mirrored prediction
    assert torch.allclose(logits, mirrored, atol=1e-5) is flip
    # classes innermost, for the per-pixel argmax of mmseg's post-processing
    assert logits.is_contiguous(memory_format=torch.channels_last)
    if flip:
        assert torch.allclose(logits.exp().sum(dim=1), torch.ones(2, 32, 32), atol=1e-5)
        # one batched pass equals the mean of the two separate passes' probabilities
        with torch.no_grad():
            plain = EncoderDecoder.inference(model, inputs, metas).softmax(1)
            mirror = EncoderDecoder.inference(model, inputs.flip(-1), metas).flip(-1).softmax(1)
        assert torch.allclose(logits.exp(), (plain + mirror) / 2, atol=1e-5)


def test_img_ratios_average_the_resized_views() -> None:
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 32, 32)
    metas = [dict(ori_shape=(32, 32), img_shape=(32, 32))] * 2
    plain, scaled = unet({}), unet(dict(img_ratios=(0.75, 1.0)))
    scaled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        logits = scaled.inference(inputs, metas)
        same = plain.inference(inputs, metas)
        small = torch.nn.functional.interpolate(inputs, size=(24, 24), mode='bilinear')
        view = EncoderDecoder.inference(plain, small, [dict(m, img_shape=(24, 24)) for m in metas])
        view = torch.nn.functional.interpolate(view, size=(32, 32), mode='bilinear')
    assert logits.shape == same.shape == (2, 3, 32, 32)
    # the mean of the probabilities of the image at 24x24 (back at 32x32) and at 32x32
    assert torch.allclose(logits.exp(), (same.softmax(1) + view.softmax(1)) / 2, atol=1e-5)
    assert not torch.allclose(logits.exp(), same.softmax(1), atol=1e-3)
    with pytest.raises(UserError, match=r'img_ratios must be positive numbers.*got \(0, 1\)'):
        unet(dict(img_ratios=(0, 1)))


def test_unresolved_auto_stops_the_build() -> None:
    cfg = load_config('configs/unet_r34.py', tiny_options())
    cfg.model.backbone.init_cfg = None
    settle_class_weights(cfg, None)
    with pytest.raises(UserError, match="test_cfg.one_class='auto'.*tools/train.py"):
        MODELS.build(cfg.model)
    cfg.model.test_cfg.one_class = 'yes'
    with pytest.raises(UserError, match="one_class must be True, False or 'auto', got 'yes'"):
        MODELS.build(cfg.model)


def test_auto_follows_the_training_masks(tiny_data: Path, tmp_path: Path) -> None:
    cfg = load_config('configs/unet_r34.py', tiny_options())
    set_data_root(cfg, str(tiny_data))
    decision = resolve_object_prior(cfg)  # generated data: one shape per image
    assert decision['one_class'] is True and decision['largest_object'] is True
    assert decision['counts']['with_foreground'] == 16
    assert cfg.model.test_cfg.one_class is True
    # a copy where every mask also holds a second class in a separate corner
    root = tmp_path / 'two'
    for sub in ('img/train', 'labels/train'):
        (root / sub).mkdir(parents=True)
    for mask_path in sorted((tiny_data / 'labels' / 'train').glob('*.png')):
        mask = np.array(Image.open(mask_path))
        mask[:3, :3] = 1
        mask[-3:, -3:] = 2
        Image.fromarray(mask).save(root / 'labels' / 'train' / mask_path.name)
        image = next((tiny_data / 'img' / 'train').glob(mask_path.stem + '.*'))
        (root / 'img' / 'train' / image.name).write_bytes(image.read_bytes())
    cfg = load_config('configs/unet_r34.py', tiny_options())
    set_data_root(cfg, str(root))
    decision = resolve_object_prior(cfg)
    assert decision['one_class'] is False and decision['largest_object'] is False


def test_settle_takes_the_checkpoints_decision() -> None:
    trained = Config(dict(model=dict(
        test_cfg=dict(mode='whole', one_class=True, largest_object=False),
        decode_head=dict(loss_decode=[dict(class_weight=[0.2, 1.4, 1.4]), dict()]))))
    for meta, expected, weights in (({'cfg': trained.pretty_text}, (True, False), [0.2, 1.4, 1.4]),
                                    ({}, (False, False), None)):
        cfg = load_config('configs/unet_r34.py')
        settle_object_prior(cfg, meta)
        settle_class_weights(cfg, meta)
        assert (cfg.model.test_cfg.one_class, cfg.model.test_cfg.largest_object) == expected
        assert cfg.model.decode_head.loss_decode[0].class_weight == weights


@pytest.mark.parametrize('config', ['configs/unet_r34.py', 'configs/unet_r34_seed.py'])
def test_tta_switches_on_the_models_flip(config: str) -> None:
    cfg = load_config(config, tiny_options())
    set_flip(cfg)  # --tta; the seed config's plain EncoderDecoder becomes the prior's segmentor
    assert cfg.model.type == 'ObjectPriorEncoderDecoder' and cfg.model.test_cfg.flip is True
    assert cfg.model.test_cfg.mode == 'whole'
    settle_object_prior(cfg, None)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.loss_decode = dict(type='IgnoreSafeCrossEntropyLoss')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    inputs = torch.randn(1, 3, 32, 32)
    metas = [dict(ori_shape=(32, 32), img_shape=(32, 32))]
    with torch.no_grad():
        logits = model.inference(inputs, metas)
        mirrored = model.inference(inputs.flip(-1), metas).flip(-1)
    assert torch.allclose(logits, mirrored, atol=1e-5)


def test_prior_takes_the_class_from_the_head_when_given() -> None:
    probs, pred = two_blobs()
    out = apply_object_prior(probs, pred, class_scores=torch.tensor([0.3, 0.7]))
    assert set(out.unique().tolist()) == {0, 2} and out[1:5, 1:5].eq(2).all()


def test_image_class_targets_and_the_heads_loss() -> None:
    from smallseg.models.image_class_head import ImageClassHead, image_class_targets

    def sample(mask: torch.Tensor) -> SegDataSample:
        from mmengine.structures import PixelData
        return SegDataSample(gt_sem_seg=PixelData(data=mask[None]))
    mostly_two = torch.zeros(8, 8, dtype=torch.long)
    mostly_two[:4] = 2
    mostly_two[4, :3] = 1
    mostly_two[5:] = 255  # ignored, as any label >= num_classes
    background = torch.zeros(8, 8, dtype=torch.long)
    samples = [sample(mostly_two), sample(background)]
    assert image_class_targets(samples, 3).tolist() == [1, -1]
    head = ImageClassHead(in_channels=4, num_classes=3)
    feats = [torch.randn(2, 4, 2, 2, requires_grad=True)]
    losses = head.loss(feats, samples)
    losses['loss_cls'].backward()
    assert losses['loss_cls'] > 0 and head.fc.weight.grad.abs().sum() > 0
    none = head.loss(feats, [sample(background)] * 2)  # nothing to learn: zero, in the graph
    assert none['loss_cls'] == 0 and none['loss_cls'].requires_grad
    with pytest.raises(UserError, match='two foreground classes'):
        ImageClassHead(in_channels=4, num_classes=2)


@pytest.mark.parametrize('class_from', ['vote', 'head'])
def test_one_class_follows_the_head_or_the_vote(class_from: str) -> None:
    """The decode head says class 1 everywhere, the image-level head says class 2."""
    model = unet(dict(one_class=True, largest_object=False, flip=True, class_from=class_from),
                 auxiliary_head=dict(type='ImageClassHead', in_channels=512, num_classes=3))
    with torch.no_grad():
        model.decode_head.conv_seg.weight.zero_()
        model.decode_head.conv_seg.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
        model.auxiliary_head.fc.weight.zero_()
        model.auxiliary_head.fc.bias.copy_(torch.tensor([-5.0, 5.0]))
        inputs = torch.randn(2, 3, 32, 32)
        samples = [SegDataSample(metainfo=dict(ori_shape=(32, 32), img_shape=(32, 32),
                                               padding_size=[0, 0, 0, 0]))] * 2
        results = model.predict(inputs, samples)
    for result in results:
        assert result.pred_sem_seg.data.unique().tolist() == [1 if class_from == 'vote' else 2]
    model.train()
    from mmengine.structures import PixelData
    mask = torch.ones(1, 32, 32, dtype=torch.long)
    losses = model.loss(inputs, [SegDataSample(gt_sem_seg=PixelData(data=mask),
                                               metainfo=samples[0].metainfo)] * 2)
    assert {'aux.loss_cls', 'aux.acc_cls', 'decode.loss_ce'} <= set(losses)


def test_class_from_head_needs_the_head_and_whole_mode() -> None:
    with pytest.raises(UserError, match="class_from='head' needs model.auxiliary_head"):
        unet(dict(class_from='head'))
    with pytest.raises(UserError, match="class_from must be 'vote' or 'head', got 'both'"):
        unet(dict(class_from='both'))
    with pytest.raises(UserError, match="needs mode='whole'"):
        unet(dict(class_from='head', mode='slide', crop_size=(16, 16), stride=(8, 8)),
             auxiliary_head=dict(type='ImageClassHead', in_channels=512, num_classes=3))
