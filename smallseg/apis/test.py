"""Evaluation entry point used by tools/test.py and the main job."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .config import (check_data_root, configure_amp, configure_launcher, default_work_dir,
                     load_config, set_data_root)
from .errors import UserError
from .results import update_results
from .train import RUN_INFO, device_name


def check_checkpoint(path: str | Path, cfg: Config) -> dict:
    """Load ``path`` once to verify it is a checkpoint of this model; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'checkpoint {path} not found')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as exc:
        raise UserError(f'checkpoint {path} cannot be read ({type(exc).__name__}); '
                        'is it a .pth written by tools/train.py?') from exc
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserError(f'checkpoint {path} holds no state_dict')
    seg = state.get('decode_head.conv_seg.weight')
    expected = cfg.model.decode_head.num_classes
    if seg is not None and seg.shape[0] != expected:
        raise UserError(f'checkpoint {path} predicts {seg.shape[0]} classes, the config '
                        f'{expected}: pass the config it was trained with')
    if cfg.model.backbone.type == 'ResNet' and any(
            k.startswith('decode_head.blocks.') for k in state):
        raise UserError(f'checkpoint {path} is a U-Net checkpoint; use configs/unet_r34.py')
    if cfg.model.backbone.type == 'ResNetWithStem' and any(
            k.startswith('decode_head.aspp_modules') for k in state):
        raise UserError(f'checkpoint {path} is a DeepLabV3+ checkpoint; '
                        'use configs/deeplabv3plus_r50.py')
    return ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}


def build_test_cfg(config: str | Path, checkpoint: str | Path, split: str = 'test',
                   work_dir: Optional[str] = None, data_root: Optional[str] = None,
                   amp: Optional[str] = None, show_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None, launcher: str = 'none') -> Config:
    """Config for evaluating ``checkpoint`` on ``split`` ('val' or 'test')."""
    if split not in ('val', 'test'):
        raise UserError(f"--split must be 'val' or 'test', got {split!r}")
    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    set_data_root(cfg, data_root)
    if split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = cfg.val_evaluator
    check_data_root(cfg, ('test_dataloader',))
    check_checkpoint(checkpoint, cfg)
    cfg.load_from = str(checkpoint)
    cfg.model.backbone.init_cfg = None  # weights come from the checkpoint
    configure_amp(cfg, amp or cfg.get('amp', 'auto'))
    configure_launcher(cfg, launcher)
    if show_dir:
        vis = cfg.default_hooks.visualization
        vis.update(draw=True, interval=1, show=False)
        cfg.visualizer.save_dir = str(show_dir)
    return cfg


def evaluate(cfg: Config) -> dict:
    """Run mmengine's test loop; metrics are returned as fractions (0-1), not percent."""
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    metrics = runner.test()
    out = {k: (round(v / 100.0, 4) if isinstance(v, (int, float)) and k[:1] in 'am' else v)
           for k, v in metrics.items()}
    out['eval_time_s'] = round(time.perf_counter() - start, 1)
    return out


def record_results(results_path: str | Path, model_name: str, split: str, metrics: dict,
                   config: str | Path, checkpoint: str | Path) -> dict:
    """Merge this evaluation (and the training run's info, if found) into results.json."""
    entry = {f'{split}_mdice': metrics.get('mDice'), f'{split}_miou': metrics.get('mIoU'),
             'config': str(config), 'checkpoint': str(checkpoint), 'device': device_name()}
    run_info = Path(checkpoint).parent / RUN_INFO
    if run_info.is_file():
        info = json.loads(run_info.read_text())
        if split == 'test' and info.get('best_val_mdice') is not None:
            entry.setdefault('val_mdice', info['best_val_mdice'])
        entry.update({k: info.get(k) for k in (
            'epochs', 'best_epoch', 'wall_time_s', 'init', 'precision')})
    return update_results(results_path, model_name, entry)
