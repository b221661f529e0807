"""ImageNet encoder weights: a local file, the torch hub cache, or from scratch with a warning."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from smallseg.apis.errors import UserError
from smallseg.apis.pretrained import resolve_pretrained


def fake_imagenet_resnet34(path: Path, config: str = 'configs/unet_r34.py') -> dict:
    """A torchvision-style ResNet state dict (conv1/bn1/layer*/fc keys) of ``config``'s
    backbone, random values."""
    cfg = Config.fromfile(config)
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in backbone.state_dict().items()}
    state['fc.weight'] = torch.randn(1000, backbone.feat_dim)  # the classifier, ignored
    torch.save(state, path)
    return state


def build_model(cfg: Config) -> torch.nn.Module:
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('config', ['configs/unet_r34.py', 'configs/deeplabv3plus_r50.py',
                                    'configs/unet_r34_seed.py'])
def test_local_file_is_loaded(tmp_path: Path, config: str) -> None:
    weights = tmp_path / 'resnet.pth'
    state = fake_imagenet_resnet34(weights, config)
    cfg = Config.fromfile(config)
    info = resolve_pretrained(cfg, str(weights))
    assert info == dict(init='imagenet', checkpoint=str(weights), reason='--pretrained')
    model = build_model(cfg)
    torch.testing.assert_close(model.backbone.layer4[2].conv2.weight,
                               state['layer4.2.conv2.weight'])
    torch.testing.assert_close(model.backbone.conv1.weight, state['conv1.weight'])


def test_auto_finds_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    state = fake_imagenet_resnet34(cache / 'resnet34-b627a593.pth')
    cfg = Config.fromfile('configs/unet_r34.py')
    info = resolve_pretrained(cfg, 'auto')
    assert info['init'] == 'imagenet' and info['checkpoint'].endswith('resnet34-b627a593.pth')
    model = build_model(cfg)
    torch.testing.assert_close(model.backbone.conv1.weight, state['conv1.weight'])


def test_auto_without_weights_trains_from_scratch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cfg = Config.fromfile('configs/deeplabv3plus_r50.py')
    info = resolve_pretrained(cfg, 'auto')
    assert info['init'] == 'scratch' and 'torchvision://resnet50' in info['reason']
    assert cfg.model.backbone.init_cfg is None
    assert '\n' not in info['warning'] and '--pretrained FILE' in info['warning']
    assert str(tmp_path / 'hub' / 'checkpoints' / 'resnet50-*.pth') in info['warning']


def test_disabled_and_missing_file(tmp_path: Path) -> None:
    cfg = Config.fromfile('configs/unet_r34.py')
    assert resolve_pretrained(cfg, None)['init'] == 'scratch'
    assert cfg.model.backbone.init_cfg is None
    with pytest.raises(UserError, match='not found'):
        resolve_pretrained(Config.fromfile('configs/unet_r34.py'), str(tmp_path / 'x.pth'))
