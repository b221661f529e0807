"""The whole benchmark: step breakdown in process, epoch breakdown of real training runs of
this tree and, with ``compare``, of another git revision, run one after the other."""
from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Optional

import torch

from ..utils.errors import UserError
from .epochs import repo_root, run_epochs, tree_info, worktree
from .step import bench_steps

CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')


def machine_info() -> dict:
    """CPU model and the flags that decide bf16 speed (``/proc/cpuinfo``), threads, torch."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path('/proc/cpuinfo')
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(':')
            if key.strip() == 'model name' and model in ('', platform.machine()):
                model = value.strip()
            elif key.strip() == 'flags' and not flags:
                flags = set(value.split())
    return dict(
        cpu_model=model, cpu_flags={f: f in flags for f in CPU_FLAGS}, cpus=os.cpu_count(),
        threads=torch.get_num_threads(), torch=torch.__version__,
        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu',
        python=platform.python_version())


def _in_tree(config: str, this: Path, other: Path) -> Path:
    """``config`` of this checkout at the same place in ``other`` (a file outside the checkout
    is used as it is)."""
    path = Path(config).resolve()
    if not path.is_relative_to(this):
        return path
    found = other / path.relative_to(this)
    if not found.is_file():
        raise FileNotFoundError(f'{path.relative_to(this)} does not exist in {other}')
    return found


def compare_epochs(epoch_runs: dict, rev: str) -> dict:
    """Per config: median epoch time of this tree and of ``rev`` and the speed-up rev/this."""
    out = {}
    for name, this in epoch_runs['this'].items():
        other = epoch_runs[rev][name]
        a, b = this['median']['epoch_s'], other['median']['epoch_s']
        out[name] = dict(epoch_s_this=a, epoch_s_rev=b, speedup=round(b / a, 3) if a else None)
    return out


def run_benchmark(configs: list[str] | str, data_root: Optional[str] = None, steps: int = 5,
                  warmup: int = 2, batch_size: Optional[int] = None, amp: str = 'auto',
                  baseline: bool = True, cfg_options: Optional[dict] = None,
                  img_size: Optional[tuple[int, int]] = None, epochs: int = 3,
                  compare: Optional[str] = None, log=print) -> dict:
    """Step breakdown of ``configs`` (``steps`` > 0) and, for ``epochs`` > 0, the epoch
    breakdown of this tree and of ``compare`` (a git revision), config by config."""
    configs = [configs] if isinstance(configs, str) else list(configs)
    if compare and epochs <= 0:
        raise UserError('--compare needs the epoch breakdown: --epochs 1 or more')
    this = repo_root()
    result = dict(configs=configs, machine=machine_info(), date=time.strftime('%Y-%m-%d %H:%M'),
                  revisions=dict(this=tree_info(this)))
    if steps > 0:
        log(f'step breakdown: {", ".join(configs)}')
        result.update(bench_steps(configs, data_root, steps, warmup, batch_size, amp, baseline,
                                  cfg_options, img_size))
    if epochs <= 0:
        return result
    options = dict(cfg_options or {})
    if img_size:
        options['img_size'] = tuple(img_size)
    if batch_size:
        options['train_dataloader.batch_size'] = batch_size
    data_root = str(Path(data_root or 'data/default').resolve())
    runs = {'this': {}, **({compare: {}} if compare else {})}
    with (worktree(compare, this) if compare else contextlib.nullcontext()) as other:
        if compare:
            result['revisions'][compare] = tree_info(other)
        for config in configs:
            name = Path(config).stem
            for label, tree in (('this', this), (compare, other)):
                if label is None:
                    continue
                log(f'epoch breakdown: {name}, {epochs} epochs, {label} ({tree})')
                runs[label][name] = run_epochs(tree, _in_tree(config, this, tree), data_root,
                                               epochs, amp, options)
    result.update(epochs=epochs, epoch_runs=runs)
    if compare:
        result['compare'] = dict(rev=compare, configs=compare_epochs(runs, compare))
    return result
