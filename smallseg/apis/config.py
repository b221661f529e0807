"""Load a config and apply the tools' command-line choices to it."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterator, Optional

import torch
from mmengine.config import Config

from ..utils.config import LOADER_KEYS
from ..utils.errors import UserError


def load_config(path: str | Path, cfg_options: Optional[dict] = None) -> Config:
    """Read ``path`` and merge ``--cfg-options``; bad files or keys give a :class:`UserError`."""
    path = Path(path)
    from .cfg_check import check_option_keys, check_types, suggest_config
    if not path.is_file():
        raise UserError(f'config file {path} not found{suggest_config(path)}')
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # syntax errors, missing _base_ files
        reason = ' '.join(str(exc).split()) or type(exc).__name__
        raise UserError(f'cannot read config {path}: {type(exc).__name__}: {reason}') from exc
    # the file must size what its img_size says (single sizes may then change by option;
    # --cfg-options img_size=... resizes them all, below)
    if 'img_size' not in (cfg_options or {}):
        check_img_size(cfg, path)
    if cfg_options:
        check_option_keys(cfg, cfg_options)  # mmengine would add unknown keys silently
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:
            raise UserError(f'--cfg-options {cfg_options}: {exc}') from exc
        # the bases' variables are already resolved into the dataloaders: propagate them
        if 'data_root' in cfg_options:
            set_data_root(cfg, cfg_options['data_root'])
    if cfg_options and 'img_size' in cfg_options:
        set_img_size(cfg, cfg_options['img_size'])
    check_types(cfg)  # a misspelt type would fail later, inside mmengine, with a traceback
    return cfg


def set_data_root(cfg: Config, data_root: Optional[str | Path]) -> None:
    """Point every dataloader at ``data_root`` (the tools' ``--data-root``)."""
    if data_root is None:
        return
    root = str(data_root)
    cfg.data_root = root
    for key in LOADER_KEYS:
        loader = cfg.get(key)
        if loader is not None:
            loader.dataset.data_root = root


def _resize_pipeline(pipeline: list, size: tuple[int, int]) -> None:
    """Size a pipeline's Resize / RandomResize (``scale`` (w, h)) and RandomCrop (``crop_size``
    (h, w)) at ``size`` (w, h), inside TestTimeAug too."""
    for t in pipeline:
        if t.get('type') in ('Resize', 'RandomResize') and 'scale' in t:
            t['scale'] = size
        if t.get('type') == 'RandomCrop':
            t['crop_size'] = size[::-1]
        for group in t.get('transforms', []) if t.get('type') == 'TestTimeAug' else []:
            _resize_pipeline(group, size)


def set_max_epochs(cfg: Config, epochs: Optional[int] = None) -> None:
    """Train ``epochs`` epochs (None: the config's) and end the last epoch-based LR schedule
    (the decay; warm-ups end earlier) at the last epoch, shorter or longer than it was written
    for (a schedule base written for 30 epochs, a config that trains 12, ``--epochs 65`` or
    ``--cfg-options train_cfg.max_epochs=65``), so a warm-up + decay recipe always decays to its
    floor at the last epoch."""
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
    last = cfg.train_cfg.get('max_epochs')
    schedulers = cfg.get('param_scheduler') or []
    schedulers = schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]
    timed = [s for s in schedulers if s.get('by_epoch', True) and s.get('end') is not None]
    if last is None or not timed:
        return
    final = max(s['end'] for s in timed)
    for scheduler in timed:
        if scheduler['end'] == final or scheduler['end'] > last:
            scheduler['end'] = last
        if scheduler.get('begin', 0) >= scheduler['end']:  # a warm-up longer than the run
            scheduler['begin'] = 0


def set_img_size(cfg: Config, size: Optional[tuple[int, int]]) -> None:
    """Train/test at ``size`` (w, h): every pipeline's Resize and RandomCrop (the dataloaders',
    the TTA pipeline, the top-level pipeline variables) and the preprocessor's pad size, which
    mmseg reads as (h, w) like ``crop_size``."""
    if size is None:
        return
    size = tuple(int(s) for s in size)
    cfg.img_size = size
    if 'crop_size' in cfg:
        cfg.crop_size = size[::-1]
    for key in LOADER_KEYS:
        loader = cfg.get(key)
        if loader is None:
            continue
        _resize_pipeline(loader.dataset.get('pipeline', []), size)
    # the top-level pipeline variables too, so a dumped config reads as it runs
    for key in ('train_pipeline', 'val_pipeline', 'test_pipeline', 'tta_pipeline'):
        _resize_pipeline(cfg.get(key) or [], size)
    if cfg.model.get('data_preprocessor', {}).get('size') is not None:
        cfg.model.data_preprocessor.size = size[::-1]


def _resizes(pipeline: list) -> Iterator[tuple[str, tuple[int, int], bool]]:
    """Every size a pipeline sets, as (transform, size as written, whether written (h, w)):
    Resize and RandomResize ``scale`` (w, h), RandomCrop ``crop_size`` (h, w), inside
    TestTimeAug too."""
    for t in pipeline:
        if t.get('type') in ('Resize', 'RandomResize') and 'scale' in t:
            yield t['type'], tuple(t['scale']), False
        if t.get('type') == 'RandomCrop' and 'crop_size' in t:
            yield 'RandomCrop crop_size (h, w)', tuple(t['crop_size']), True
        for group in t.get('transforms', []) if t.get('type') == 'TestTimeAug' else []:
            yield from _resizes(group)


def check_img_size(cfg: Config, path: str | Path) -> None:
    """A config's ``img_size`` (w, h) must be the size its dataloaders resize and crop to and its
    preprocessor pads to ((h, w), mmseg's order): the tools read the file as plain mmengine
    does, so a bare ``img_size = ...`` that sizes nothing is an error, not a silent no-op."""
    size = cfg.get('img_size')
    if size is None:
        return
    size = tuple(size)
    found = [(f'{key} {where}', written, hw) for key in LOADER_KEYS if cfg.get(key) is not None
             for where, written, hw in _resizes(cfg[key].dataset.get('pipeline', []))]
    preprocessor = (cfg.get('model') or {}).get('data_preprocessor') or {}
    if preprocessor.get('size') is not None:
        found.append(('model.data_preprocessor.size (h, w)', tuple(preprocessor['size']), True))
    for where, written, hw in found:
        wanted = size[::-1] if hw else size
        if written != wanted:
            raise UserError(f'{path}: img_size (w, h) is {size} but {where} is {written}, not '
                            f'{wanted}; write the pipelines at img_size and RandomCrop and '
                            'model.data_preprocessor.size at (h, w), or pass '
                            '--cfg-options img_size=W,H to size them all')


def check_data_root(cfg: Config, loaders: tuple[str, ...]) -> None:
    """Fail early, in one line, when a dataloader's folders are missing."""
    for key in loaders:
        ds = cfg[key].dataset
        root = Path(ds.get('data_root', '') or '.')
        if not root.is_dir():
            raise UserError(
                f'data root {root} does not exist; pass --data-root DIR holding '
                'img/{train,val,test} and labels/{train,val,test} '
                '(make the default one with: python datasets/make_default_dataset.py)')
        prefix = ds.get('data_prefix', {})
        for name in ('img_path', 'seg_map_path'):
            sub = prefix.get(name)
            if sub and not (root / sub).is_dir():
                raise UserError(f'{key}: folder {root / sub} is missing '
                                f'(expected layout: {root}/img/<split>, {root}/labels/<split>)')


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matmuls are fast (not emulated)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:
        return False


def add_amp_arguments(parser: argparse.ArgumentParser) -> None:
    """``--amp`` / ``--no-amp`` (dest ``amp``: 'on', 'off' or None = the config's ``amp``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--amp', dest='amp', action='store_const', const='on',
                       help='mixed precision (bf16 on CPU, bf16/fp16 on CUDA); default: the '
                            "config's amp='auto', on where the hardware runs it natively")
    group.add_argument('--no-amp', dest='amp', action='store_const', const='off',
                       help='fp32 only')


def configure_amp(cfg: Config, mode: str = 'auto') -> str:
    """Switch mixed precision on or off; returns what was chosen (for logs and results).

    ``mode``: 'auto' (native hardware only), 'on' or 'off'. CUDA uses mmengine's
    ``AmpOptimWrapper`` (bf16 where supported, else fp16 with loss scaling); a CPU uses
    :class:`smallseg.engine.AutocastOptimWrapper` with bf16. Val/test loops autocast too.
    """
    if mode not in ('auto', 'on', 'off'):
        raise UserError(f"amp must be 'auto', 'on' or 'off', got {mode!r}")
    cuda = torch.cuda.is_available()
    enable = mode == 'on' or (mode == 'auto' and (cuda or cpu_has_native_bf16()))
    if not enable:
        return 'fp32'
    wrapper = cfg.optim_wrapper
    if cuda:
        dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
        wrapper.type = 'AmpOptimWrapper'
        wrapper.dtype = dtype
        if dtype == 'float16':
            wrapper.loss_scale = 'dynamic'
    else:
        dtype = 'bfloat16'
        wrapper.type = 'AutocastOptimWrapper'
        wrapper.dtype = dtype
        wrapper.device_type = 'cpu'
    for key in ('val_cfg', 'test_cfg'):
        if cfg.get(key) is not None:
            cfg[key].fp16 = True  # mmengine's loops then autocast (bf16 on CPU)
    return f"{'cuda' if cuda else 'cpu'}-{dtype}"


def configure_workers(cfg: Config) -> None:
    """Pick dataloader worker counts from the machine when ``auto_num_workers`` is set.

    On a CPU-only machine with few cores, worker processes compete with the training
    threads for the same cores (on 2 cores, steps up to 20x slower), and loading a
    small batch of 256x256 images in the main process costs ~1% of a step: 0 workers. With
    more cores or a GPU: half the cores, at most 8.
    """
    if not cfg.get('auto_num_workers', False):
        return
    cores = os.cpu_count() or 1
    workers = 0 if (not torch.cuda.is_available() and cores <= 4) else min(8, cores // 2)
    for key in LOADER_KEYS:
        loader = cfg.get(key)
        if loader is not None:
            loader.num_workers = workers
            loader.persistent_workers = workers > 0


def configure_launcher(cfg: Config, launcher: str) -> None:
    """Set the launcher; distributed runs without CUDA use the gloo backend."""
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        # CPU modules: DistributedDataParallel without device_ids (mmengine passes LOCAL_RANK)
        wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                        broadcast_buffers=False)
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper


def default_work_dir(config_path: str | Path) -> str:
    """mmseg's convention: ``work_dirs/<config name>``."""
    return os.path.join('work_dirs', Path(config_path).stem)

