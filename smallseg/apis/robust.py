"""Checks that make a training run safe to start, stop and restart (used by build_train_cfg)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import torch
from mmengine.config import Config

from ..utils.errors import UserError
from .outputs import check_output_dir

CKPT_PATTERNS = ('epoch_*.pth', 'iter_*.pth', 'interrupted_*.pth')


def check_epochs(epochs: Optional[int]) -> None:
    if epochs is not None and int(epochs) < 1:
        raise UserError(f'--epochs must be at least 1, got {epochs}')


def check_work_dir(work_dir: str | Path) -> None:
    """Create ``work_dir`` and prove a file can be written there (one line if not)."""
    check_output_dir(work_dir, '--work-dir', what='work dir')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def clean_stale_temporaries(work_dir: str | Path) -> list[Path]:
    """Remove the ``<file>.tmp<pid>`` files of writes whose process is gone (a kill -9 while
    a checkpoint was written, see :mod:`smallseg.engine.atomic_io`); returns them.

    Files of a live process (another run in the same folder) are left alone.
    """
    removed, freed = [], 0
    for path in sorted(Path(work_dir).glob('*.tmp*')):
        pid = path.name.rsplit('.tmp', 1)[-1]
        if not pid.isdigit() or _pid_alive(int(pid)) or not path.is_file():
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:  # gone meanwhile (another rank removed it)
            continue
        removed.append(path)
        freed += size
    if removed and os.environ.get('RANK', '0') == '0':
        names = ', '.join(p.name for p in removed[:3]) + (' ...' if len(removed) > 3 else '')
        print(f'warning: removed {len(removed)} unfinished write(s) of a stopped run from '
              f'{work_dir} ({names}; {freed / 2**20:.1f} MiB)', file=sys.stderr)
    return removed


def configure_randomness(cfg: Config, seed: Optional[int], deterministic: bool) -> Optional[int]:
    """mmengine's ``randomness=dict(seed=..., deterministic=...)``; returns the seed.

    ``deterministic`` without a seed uses seed 0 (the same on every run), turns cuDNN
    benchmarking off and sets ``CUBLAS_WORKSPACE_CONFIG`` for deterministic CUDA matmuls.
    """
    randomness = dict(cfg.get('randomness') or {})
    if seed is not None:
        randomness['seed'] = int(seed)
    if deterministic:
        randomness.setdefault('seed', 0)
        if randomness['seed'] is None:
            randomness['seed'] = 0
        randomness['deterministic'] = True
        cfg.env_cfg.cudnn_benchmark = False
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    if randomness:
        cfg.randomness = randomness
    return randomness.get('seed')


def _readable_checkpoint(path: Path) -> bool:
    try:
        torch.load(path, map_location='cpu', weights_only=False, mmap=True)
        return True
    except Exception:  # noqa: BLE001 - truncated or foreign file
        return False


def find_resume_checkpoint(work_dir: str | Path) -> Optional[Path]:
    """The checkpoint ``--resume`` continues from: what ``last_checkpoint`` names, else the
    newest ``epoch_*/iter_*/interrupted_*.pth`` (e.g. when ``last_checkpoint`` was lost)."""
    work_dir = Path(work_dir)
    last = work_dir / 'last_checkpoint'
    if last.is_file():
        named = last.read_text().strip()
        if named:
            path = Path(named)
            if not path.is_absolute() and not path.is_file():
                path = work_dir / path.name
            if path.is_file():
                return path
            # the work dir may have been moved: same file name here
            if (work_dir / path.name).is_file():
                return work_dir / path.name
    found = [p for pattern in CKPT_PATTERNS for p in work_dir.glob(pattern)]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        if _readable_checkpoint(path):
            return path
    return None


def resolve_resume(cfg: Config, resume: bool) -> Optional[str]:
    """Point ``cfg`` at the checkpoint to resume from, checked against the model.

    Returns its path, or None when there is nothing to resume (then training starts at
    epoch 1, as mmengine does, and a warning says so).
    """
    from .test import check_checkpoint  # test imports train: import here, not at the top
    if not resume:
        if cfg.get('load_from'):
            check_checkpoint(cfg.load_from, cfg)
        cfg.resume = False
        return None
    path = find_resume_checkpoint(cfg.work_dir)
    if path is None:
        if os.environ.get('RANK', '0') == '0':
            print(f'warning: --resume: no checkpoint in {cfg.work_dir}; training starts at '
                  'epoch 1', file=sys.stderr)
        cfg.resume = False
        if cfg.get('load_from'):
            check_checkpoint(cfg.load_from, cfg)
        return None
    try:
        check_checkpoint(path, cfg)
    except UserError as exc:
        raise UserError(f'--resume: {exc} (work dir {cfg.work_dir}: use another --work-dir '
                        'for a different model)') from exc
    cfg.load_from = str(path)
    cfg.resume = True
    return str(path)
