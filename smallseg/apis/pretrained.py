"""Resolve the encoder's ImageNet weights offline: a local file, the torch hub cache, or none."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from .errors import UserError

TORCHVISION_PREFIX = 'torchvision://'


def hub_checkpoint_dir() -> Path:
    """Where torch hub caches downloads (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / 'checkpoints'


def find_torchvision_weights(arch: str) -> Optional[Path]:
    """torchvision's file for ``arch`` (e.g. ``resnet50-0676ba61.pth``) in the hub cache."""
    found = sorted(hub_checkpoint_dir().glob(f'{arch}-*.pth'))
    return found[-1] if found else None


def resolve_pretrained(cfg: Config, pretrained: Optional[str] = 'auto') -> dict:
    """Rewrite ``model.backbone.init_cfg`` to a local file or drop it; return what was used.

    Args:
        cfg: The config; its backbone ``init_cfg`` names the intended weights
            (``torchvision://resnet50`` or a path).
        pretrained: 'auto' (use the intended weights when found offline, else train from
            scratch with one warning line), a file path (must exist), or None / 'none'
            (from scratch).

    Returns:
        ``{'init': 'imagenet' | 'scratch', 'checkpoint': path or None, 'reason': str}``.
    """
    backbone = cfg.model.backbone
    init_cfg = backbone.get('init_cfg') or {}
    intended = init_cfg.get('checkpoint') if init_cfg.get('type') == 'Pretrained' else None
    if pretrained in (None, 'none', 'None', ''):
        backbone.init_cfg = None
        return dict(init='scratch', checkpoint=None, reason='pretrained weights disabled')
    if pretrained != 'auto':
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise UserError(f'--pretrained {pretrained}: file not found')
        backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
        return dict(init='imagenet', checkpoint=str(path), reason='--pretrained')
    if intended is None:
        return dict(init='scratch', checkpoint=None, reason='config has no pretrained weights')
    if intended.startswith(TORCHVISION_PREFIX):
        arch = intended[len(TORCHVISION_PREFIX):]
        local = find_torchvision_weights(arch)
        where = f'{hub_checkpoint_dir()}/{arch}-*.pth'
    else:
        local = Path(intended).expanduser() if Path(intended).expanduser().is_file() else None
        where = intended
    if local is not None:
        backbone.init_cfg = dict(type='Pretrained', checkpoint=str(local))
        return dict(init='imagenet', checkpoint=str(local), reason=f'found {intended}')
    backbone.init_cfg = None
    warning = (f'No ImageNet weights for {intended} offline (looked for {where}); training the '
               'encoder from scratch. To use them put the file there or pass --pretrained FILE; '
               '--no-pretrained silences this.')
    print_log(warning, logger='current', level=logging.WARNING)
    return dict(init='scratch', checkpoint=None, reason=f'{intended} not found offline',
                warning=warning)
