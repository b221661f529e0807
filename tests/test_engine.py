"""Mixed precision switch, the CPU autocast optimiser wrapper and the channels-last hook."""
from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.optim import build_optim_wrapper

from smallseg.apis.config import configure_amp, cpu_has_native_bf16
from smallseg.engine import atomic_io
from smallseg.hooks import ChannelsLastHook


def test_amp_on_uses_bf16_autocast_on_cpu_and_in_val_test_loops() -> None:
    cfg = Config.fromfile('configs/unet_r34.py')
    chosen = configure_amp(cfg, 'on')
    if torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    else:
        assert chosen == 'cpu-bfloat16'
        assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'  # the recipe is kept
    assert cfg.val_cfg.fp16 and cfg.test_cfg.fp16


def test_amp_auto_follows_the_hardware_and_off_keeps_fp32() -> None:
    cfg = Config.fromfile('configs/deeplabv3plus_r50.py')
    chosen = configure_amp(cfg, 'auto')
    native = torch.cuda.is_available() or cpu_has_native_bf16()
    assert (chosen != 'fp32') is native
    cfg = Config.fromfile('configs/deeplabv3plus_r50.py')
    assert configure_amp(cfg, 'off') == 'fp32'
    assert cfg.optim_wrapper.type == 'OptimWrapper' and not cfg.val_cfg.get('fp16', False)


def test_autocast_wrapper_runs_forward_in_bf16_and_steps() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))
    model(torch.randn(1, 3, 8, 8))
    wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper', dtype='bfloat16',
                                              optimizer=dict(type='SGD', lr=0.1)))
    before = model[0].weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 3, 8, 8))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert model[0].weight.dtype == torch.float32  # master weights stay fp32
    assert not torch.equal(before, model[0].weight)


class _Runner:
    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model


def test_channels_last_hook_converts_conv_weights() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    ChannelsLastHook().before_run(_Runner(model))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    model2 = torch.nn.Conv2d(3, 8, 3)
    ChannelsLastHook(enabled=False).before_run(_Runner(model2))
    assert not model2.weight.is_contiguous(memory_format=torch.channels_last)


def test_checkpoint_writes_run_in_order_in_a_background_thread(tmp_path: Path) -> None:
    backend = get_file_backend(str(tmp_path))
    assert isinstance(backend, atomic_io.AtomicLocalBackend)
    with atomic_io.deferred_puts() as jobs:
        backend.put(b'weights', tmp_path / 'a.pth')
    assert not (tmp_path / 'a.pth').exists()  # recorded, not written
    done: list[tuple[str, bool]] = []
    jobs.append(lambda: done.append((threading.current_thread().name,
                                     (tmp_path / 'a.pth').is_file())))
    atomic_io.write_in_background(jobs)
    atomic_io.wait_for_writes()
    assert (tmp_path / 'a.pth').read_bytes() == b'weights'
    assert done == [('checkpoint-writer', True)]  # in the writer thread, after the put
    backend.put(b'now', tmp_path / 'b.pth')  # outside deferred_puts: written at once
    assert (tmp_path / 'b.pth').read_bytes() == b'now'


def test_a_failed_background_write_surfaces_at_the_next_wait(tmp_path: Path) -> None:
    (tmp_path / f'c.pth.tmp{os.getpid()}').symlink_to('/dev/full')  # a real ENOSPC
    atomic_io.write_in_background([partial(atomic_io.atomic_write, tmp_path / 'c.pth',
                                           bytes(2 ** 16))])
    with pytest.raises(atomic_io.SaveError, match=r'^cannot save checkpoint .*c\.pth '
                       r'\(No space left on device\); nothing was written'):
        atomic_io.wait_for_writes()
    atomic_io.wait_for_writes()  # reported once
    assert not (tmp_path / 'c.pth').exists()
