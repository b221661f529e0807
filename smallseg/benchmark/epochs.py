"""Where an epoch's time goes: real training runs of a source tree, this one or a revision's.

A run trains ``config`` for a few epochs with the tree's own ``tools/train.py`` in a
subprocess, imports the tree's own ``smallseg`` (``PYTHONPATH``) and adds only the standalone
timer hook (:mod:`.epoch_timer`, copied next to a generated config that inherits the tree's
config), so the tree under test is not edited. :func:`worktree` checks out another revision
(``git worktree add --detach``) for ``--compare``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from mmengine.config import Config, ConfigDict

from smallseg.utils.provenance import REPO, code_version

TIMER_SOURCE = Path(__file__).with_name('epoch_timer.py')
TIMER_MODULE = 'smallseg_epoch_timer'
PARTS = ('train_s', 'val_s', 'checkpoint_s')


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(['git', '-C', str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def repo_root() -> Path:
    """The checkout this ``smallseg`` package belongs to."""
    return REPO


def tree_info(tree: Path) -> dict:
    """Commit of ``tree`` and whether tracked files differ from it (None without a commit)."""
    version = code_version(tree)
    return dict(tree=str(tree), commit=version['commit'] or None, dirty=version['dirty'])


@contextlib.contextmanager
def worktree(rev: str, repo: Optional[Path] = None) -> Iterator[Path]:
    """A detached worktree of ``rev`` in a temporary folder, removed afterwards (errors too)."""
    repo = repo or repo_root()
    tmp = Path(tempfile.mkdtemp(prefix='smallseg-bench-rev-'))
    path = tmp / 'tree'
    try:
        _git(repo, 'worktree', 'add', '--detach', str(path), rev)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f'git worktree add {rev}: {exc.stderr.strip()}') from exc
    try:
        yield path
    finally:
        removed = subprocess.run(['git', '-C', str(repo), 'worktree', 'remove', '--force',
                                  str(path)], capture_output=True).returncode == 0
        shutil.rmtree(tmp, ignore_errors=True)
        if not removed:  # its folder is gone now: drop git's record of it
            subprocess.run(['git', '-C', str(repo), 'worktree', 'prune'], capture_output=True)


def _plain(value):
    """Config values as plain Python literals (``repr`` writes them back as a config)."""
    if isinstance(value, (ConfigDict, dict)):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def fit_schedule(schedulers, last: int) -> list:
    """End the last epoch-based LR schedule at epoch ``last`` (warm-ups shortened where the
    run is shorter), as training does for ``--epochs``: a valid schedule in any revision."""
    schedulers = schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]
    schedulers = [dict(_plain(s)) for s in schedulers]
    timed = [s for s in schedulers if s.get('by_epoch', True) and s.get('end') is not None]
    final = max((s['end'] for s in timed), default=None)
    for s in timed:
        if s['end'] == final or s['end'] > last:
            s['end'] = last
        if s.get('begin', 0) >= s['end']:
            s['begin'] = 0
    return schedulers


def timed_config(config: Path, epochs: int, out: Path, folder: Path) -> Path:
    """Write ``folder/bench_<name>.py``: ``config`` plus the timer hook, ``epochs`` epochs."""
    cfg = Config.fromfile(str(config), import_custom_modules=False)
    hooks = [_plain(h) for h in cfg.get('custom_hooks') or []]
    hooks.append(dict(type='BenchmarkEpochTimerHook', out=str(out)))
    imports = [*(cfg.get('custom_imports') or {}).get('imports', []), TIMER_MODULE]
    lines = [f'_base_ = [{str(config)!r}]',
             f'custom_hooks = {hooks!r}',
             f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)',
             f'train_cfg = dict(max_epochs={int(epochs)})']
    if cfg.get('param_scheduler'):
        lines.append(f'param_scheduler = {fit_schedule(cfg.param_scheduler, epochs)!r}')
    shutil.copyfile(TIMER_SOURCE, folder / f'{TIMER_MODULE}.py')
    path = folder / f'bench_{config.stem}.py'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _option(key: str, value) -> str:
    return f'{key}={value!r}'.replace(' ', '')


def train_command(tree: Path, cfg_path: Path, work_dir: Path, data_root: str, epochs: int,
                  amp: str = 'auto', cfg_options: Optional[dict] = None) -> list[str]:
    """``tools/train.py`` of ``tree`` with the options it supports: no ClearML, no pretrained
    download, no dataset check, seed 0 (the same in every tree)."""
    text = (tree / 'tools' / 'train.py').read_text()
    options = {**(cfg_options or {}), 'train_cfg.max_epochs': int(epochs)}
    cmd = [sys.executable, str(tree / 'tools' / 'train.py'), str(cfg_path),
           '--work-dir', str(work_dir), '--data-root', data_root,
           '--cfg-options', *(_option(k, v) for k, v in options.items())]
    if 'clearml' in text:
        cmd += ['--clearml', 'off']
    for flag in ('--no-pretrained', '--no-validate'):
        if flag in text:
            cmd.append(flag)
    if '--seed' in text:
        cmd += ['--seed', '0']
    if amp != 'auto':
        cmd.append('--amp' if amp == 'on' else '--no-amp')
    return cmd


def summarize(epochs: list[dict]) -> dict:
    """Medians over epochs 2..N (all where there is one) and the shares of the epoch."""
    settled = epochs[1:] or epochs
    median = {k: round(statistics.median(e[k] for e in settled), 4)
              for k in ('epoch_s', *PARTS)}
    median['iter_s'] = round(statistics.median(e['train_s'] / max(e['iters'], 1)
                                               for e in settled), 4)
    total = sum(e['epoch_s'] for e in settled)
    shares = {k[:-2]: round(sum(e[k] for e in settled) / total, 4) if total else None
              for k in PARTS}
    return dict(median=median, shares=shares, epochs_used=[e['epoch'] for e in settled])


def run_epochs(tree: Path, config: Path, data_root: str, epochs: int = 3, amp: str = 'auto',
               cfg_options: Optional[dict] = None) -> dict:
    """Train ``config`` (a file of ``tree``) for ``epochs`` epochs with ``tree``'s own code and
    return the per-epoch timings, their summary, the precision and the tree's commit."""
    tree = Path(tree).resolve()
    with tempfile.TemporaryDirectory(prefix='smallseg-bench-') as tmp:
        tmp = Path(tmp)
        out = tmp / 'epoch_times.json'
        cfg_path = timed_config(Path(config).resolve(), epochs, out, tmp)
        work_dir = tmp / 'work'
        cmd = train_command(tree, cfg_path, work_dir, str(Path(data_root).resolve()), epochs,
                            amp, cfg_options)
        path = os.pathsep.join(p for p in (str(tree), str(tmp), os.environ.get('PYTHONPATH'))
                               if p)
        env = dict(os.environ, PYTHONPATH=path, SMALLSEG_CLEARML='off')
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f'training {config} in {tree} failed ({proc.returncode}):\n'
                               f'{(proc.stdout + proc.stderr)[-3000:]}')
        timings = json.loads(out.read_text())
        info_file = work_dir / 'run_info.json'
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    if not timings['epochs']:
        raise RuntimeError(f'training {config} in {tree} recorded no epoch')
    config = Path(config).resolve()
    return dict(tree_info(tree), config=str(config.relative_to(tree)
                                            if config.is_relative_to(tree) else config),
                package=timings.get('package'), precision=info.get('precision'),
                optim_wrapper=timings.get('optim_wrapper'), epochs=timings['epochs'],
                wall_s=round(wall, 2), train_wall_s=timings.get('train_wall_s'),
                **summarize(timings['epochs']))
