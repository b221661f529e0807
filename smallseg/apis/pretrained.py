"""Resolve the encoder's ImageNet weights: a local file, the hub cache, a download, or none."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.errors import UserError
from .weights import (NETWORK_ERRORS, TIMEOUT_S, check_file, describe, download,
                      hub_checkpoint_dir, torchvision_arch, torchvision_file, weights_url)

AUTO_MODES = ('auto', 'required')


def torchvision_weights(arch: str, base_url: Optional[str] = None,
                        timeout: float = TIMEOUT_S) -> tuple[Optional[Path], str]:
    """torchvision's file for ``arch`` from the hub cache, else downloaded into it.

    Returns the verified file (None when the download failed) and where it came from or why
    it failed. A cached or downloaded file that does not match its hash raises
    :class:`~.weights.WeightsError`.
    """
    path = hub_checkpoint_dir() / torchvision_file(arch)
    if path.is_file():
        check_file(path)
        return path, f'found in the torch hub cache ({path.parent})'
    url = weights_url(path.name, base_url)
    print_log(f'Downloading {url} to {path}', logger='current')
    try:
        download(url, path, timeout)
    except NETWORK_ERRORS as exc:
        return None, f'not in {path} and the download from {url} failed: {describe(exc)}'
    return path, f'downloaded from {url}'


def resolve_pretrained(cfg: Config, pretrained: Optional[str] = 'auto',
                       base_url: Optional[str] = None, timeout: float = TIMEOUT_S) -> dict:
    """Rewrite ``model.backbone.init_cfg`` to a local file or drop it; return what was used.

    Args:
        cfg: The config; its backbone ``init_cfg`` names the intended weights
            (``torchvision://resnet50`` or a path).
        pretrained: 'auto' (the intended weights from the hub cache or downloaded into it,
            else from scratch with one warning line), 'required' (as 'auto', but an error
            instead of training from scratch), a file path (must exist), or None / 'none'
            (from scratch).
        base_url: Where to download from (default ``$SMALLSEG_WEIGHTS_URL`` or torchvision's).
        timeout: Seconds to wait for the connection and each read.

    Returns:
        ``{'init': 'imagenet' | 'scratch', 'checkpoint': path or None, 'reason': str}``
        (and ``'warning'`` when 'auto' fell back to scratch).
    """
    backbone = cfg.model.backbone
    init_cfg = backbone.get('init_cfg') or {}
    intended = init_cfg.get('checkpoint') if init_cfg.get('type') == 'Pretrained' else None
    if pretrained in (None, 'none', 'None', ''):
        backbone.init_cfg = None
        return dict(init='scratch', checkpoint=None, reason='pretrained weights disabled')
    if pretrained not in AUTO_MODES:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise UserError(f'--pretrained {pretrained}: file not found')
        backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
        return dict(init='imagenet', checkpoint=str(path), reason='--pretrained')
    if intended is None:
        return dict(init='scratch', checkpoint=None, reason='config has no pretrained weights')
    arch = torchvision_arch(intended)
    if arch is not None:
        local, reason = torchvision_weights(arch, base_url, timeout)
    else:
        local = Path(intended).expanduser()
        local, reason = ((local, f'{intended} found') if local.is_file()
                         else (None, f'{intended} not found'))
    if local is not None:
        backbone.init_cfg = dict(type='Pretrained', checkpoint=str(local))
        return dict(init='imagenet', checkpoint=str(local), reason=f'{intended}: {reason}')
    hint = 'pass --pretrained FILE, or see tools/fetch_weights.py for an offline machine'
    if pretrained == 'required':
        raise UserError(f'no ImageNet weights for {intended}, which this config needs '
                        f'(pretrained=\'required\'): {reason}; {hint}')
    backbone.init_cfg = None
    warning = (f'No ImageNet weights for {intended} ({reason}); training the encoder from '
               f'scratch. To use them {hint}; --no-pretrained silences this.')
    print_log(warning, logger='current', level=logging.WARNING)
    return dict(init='scratch', checkpoint=None, reason=f'{intended}: {reason}',
                warning=warning)


def init_line(init: dict) -> str:
    """The log line saying how the encoder starts."""
    if init.get('init') == 'imagenet':
        return f'encoder init: ImageNet weights {init["checkpoint"]} ({init["reason"]})'
    return f'encoder init: from scratch ({init.get("reason", "")})'
