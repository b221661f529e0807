"""Runs that survive: SIGKILL mid-epoch + --resume, SIGTERM/SIGINT checkpoints, NaN loss stop,
crash-safe checkpoint ordering, --seed/--deterministic, 2-process distributed training (gloo)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from smallseg.utils.errors import Interrupted
from smallseg.apis.train import SETTINGS_FILE, build_train_cfg, train
from smallseg.hooks import NonFiniteLossError

from conftest import REPO, TINY_CFG, cli_env



def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Hashes of a work dir's results: checkpoints, last_checkpoint, run_info.json (not the
    config dump, train_settings.json and logs, which every run writes anew)."""
    return {p.name: digest(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix != '.py' and p.name != SETTINGS_FILE}


def train_tiny(data: Path, work_dir: Path, epochs: int, **kw) -> dict:
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(work_dir), data_root=str(data),
                                epochs=epochs, **kw)
    return train(cfg, info)


def val_scalars(work_dir: Path) -> list[dict]:
    """Validation rows of the newest run's scalars.json."""
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [r for r in rows if 'mDice' in r]


@pytest.fixture(scope='module')
def one_epoch(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch tiny run; tests copy it before touching it."""
    work = tmp_path_factory.mktemp('one_epoch') / 'wd'
    train_tiny(tiny_data, work, epochs=1, seed=0)
    return work


TWO_ITERS = {'train_dataloader.batch_size': 8}  # 16 tiny images: 2 iterations per epoch


@pytest.fixture(scope='module')
def uninterrupted(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-epoch run of 2 iterations per epoch, the reference of the resumed runs."""
    work = tmp_path_factory.mktemp('uninterrupted') / 'wd'
    train_tiny(tiny_data, work, epochs=3, seed=0, cfg_options=TWO_ITERS)
    return work


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    # last_checkpoint holds an absolute path: point it at the copy
    (dst / 'last_checkpoint').write_text(str(dst / 'epoch_1.pth'))
    return dst


# -- resume after SIGKILL, SIGTERM ---------------------------------------------------------

def start_train(*args: str) -> subprocess.Popen:
    env = dict(cli_env(), PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, 'tools/train.py', TINY_CFG, *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for(proc: subprocess.Popen, pattern: str, timeout: float = 300) -> list[str]:
    """Read the process output until a line matches ``pattern``; returns the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if re.search(pattern, line):
            return lines
        assert time.monotonic() < deadline, 'timed out waiting for ' + pattern
    raise AssertionError(f'process ended before {pattern!r}:\n' + ''.join(lines[-40:]))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tiny_data: Path, tmp_path: Path) -> None:
    work = tmp_path / 'wd'
    args = ['--data-root', str(tiny_data), '--work-dir', str(work), '--epochs', '2',
            '--seed', '0', '--cfg-options', 'train_dataloader.batch_size=2']  # 8 iters/epoch
    proc = start_train(*args)
    try:
        wait_for(proc, r'Epoch\(train\) \[2\]\[2/8\]')
        # epoch 1's save runs in the background while epoch 2 trains: kill once it is done
        # (the checkpoint, then last_checkpoint naming it), not in the moment between the two
        deadline = time.monotonic() + 60
        while not (work / 'last_checkpoint').is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (work / 'epoch_1.pth').is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')
    assert torch.load(work / 'epoch_1.pth', weights_only=False)['meta']['epoch'] == 1
    assert not (work / 'run_info.json').exists()
    assert not list(work.glob('*.tmp*')), 'no temp file is left behind'

    resumed = subprocess.run([sys.executable, 'tools/train.py', TINY_CFG, *args, '--resume'],
                             cwd=REPO, env=cli_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((work / 'run_info.json').read_text())
    assert info['epochs'] == 2 and info['resumed_from'] == str(work / 'epoch_1.pth')
    assert info['best_checkpoint'] and Path(info['best_checkpoint']).is_file()
    assert sorted(p.name for p in work.glob('*.pth')) == sorted(
        ['epoch_2.pth', Path(info['best_checkpoint']).name])
    second = sorted(work.glob('*/*.log'))[-1].read_text()
    assert 'resumed epoch: 1, iter: 8' in second
    assert 'Epoch(train) [1]' not in second and 'Epoch(train) [2][8/8]' in second


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_finishes(tiny_data: Path, tmp_path: Path) -> None:
    work = tmp_path / 'wd'
    args = ['--data-root', str(tiny_data), '--work-dir', str(work), '--epochs', '1',
            '--cfg-options', 'train_dataloader.batch_size=2']
    proc = start_train(*args)
    try:
        wait_for(proc, r'Epoch\(train\) \[1\]\[2/8\]')
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == 128 + signal.SIGTERM, rest[-3000:]
    assert 'Traceback' not in rest
    match = re.search(r'interrupted by SIGTERM in epoch 1 \(iteration (\d)\): checkpoint saved '
                      r'to (\S+interrupted_epoch_0_iter_(\d)\.pth); continue with the same '
                      r'command and --resume', rest)
    assert match, rest[-3000:]
    ckpt = Path(match.group(2))
    assert ckpt.is_file() and (work / 'last_checkpoint').read_text() == str(ckpt)
    meta = torch.load(ckpt, weights_only=False)['meta']
    assert int(match.group(3)) >= 2
    assert meta['epoch'] == 0 and meta['iter'] == 0  # the epoch restarts, schedule rewound
    assert not (work / 'epoch_1.pth').exists()

    resumed = subprocess.run([sys.executable, 'tools/train.py', TINY_CFG, *args, '--resume'],
                             cwd=REPO, env=cli_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((work / 'run_info.json').read_text())
    assert info['epochs'] == 1 and info['resumed_from'] == str(ckpt)
    assert (work / 'epoch_1.pth').is_file() and not ckpt.exists(), 'superseded after the run'
    log = sorted(work.glob('*/*.log'))[-1].read_text()
    assert 'Epoch(train) [1][8/8]' in log  # the interrupted epoch ran again in full


@HOOKS.register_module(force=True)
class _SendSignalHook(Hook):
    """Test helper: send ``sig`` to this process after train iteration ``at``."""
    priority = 'HIGHEST'

    def __init__(self, at: int = 2, sig: str = 'SIGINT') -> None:
        self.at, self.sig = at, getattr(signal, sig)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.sig)


def test_sigint_in_process_saves_and_restores_handlers(one_epoch: Path, tiny_data: Path,
                                                       tmp_path: Path) -> None:
    work = copy_run(one_epoch, tmp_path / 'wd')
    before = signal.getsignal(signal.SIGINT)
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(work), data_root=str(tiny_data),
                                epochs=2, resume=True)
    cfg.custom_hooks.append(dict(type='_SendSignalHook', at=6))  # epoch 2, 2nd iteration
    with pytest.raises(Interrupted) as err:
        train(cfg, info)
    assert err.value.exit_code == 130
    assert 'interrupted by SIGINT in epoch 2 (iteration 6)' in str(err.value)
    ckpt = work / 'interrupted_epoch_1_iter_6.pth'
    assert ckpt.is_file() and (work / 'last_checkpoint').read_text() == str(ckpt)
    assert (work / 'epoch_1.pth').is_file()
    assert signal.getsignal(signal.SIGINT) is before


def learning_rates(work_dir: Path, repeated: tuple[int, ...] = ()) -> dict[int, float]:
    """``{iteration: lr}`` over every run (timestamped folder) in ``work_dir``; only the
    iterations in ``repeated`` may be logged twice, with the same learning rate."""
    lrs: dict[int, float] = {}
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for row in map(json.loads, scalars.read_text().splitlines()):
            if 'lr' in row:
                step = row['step']
                assert step not in lrs or (step in repeated and lrs[step] == row['lr']), step
                lrs[step] = row['lr']
    return lrs


@pytest.mark.parametrize('at', [2, 3], ids=['last_iteration_of_epoch_1', 'mid_epoch_2'])
def test_sigterm_then_resume_follows_the_uninterrupted_schedule(uninterrupted: Path,
                                                                tiny_data: Path, tmp_path: Path,
                                                                at: int) -> None:
    """SIGTERM after iteration ``at`` (2 iterations per epoch), then --resume: the learning rate
    of every iteration and the number of epochs are those of an uninterrupted run."""
    work = tmp_path / 'wd'
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(work), data_root=str(tiny_data),
                                epochs=3, seed=0, cfg_options=TWO_ITERS)
    cfg.custom_hooks.append(dict(type='_SendSignalHook', at=at, sig='SIGTERM'))
    with pytest.raises(Interrupted) as err:
        train(cfg, info)
    assert err.value.exit_code == 128 + signal.SIGTERM
    resumed = train_tiny(tiny_data, work, epochs=3, seed=0, resume=True, cfg_options=TWO_ITERS)
    expected = learning_rates(uninterrupted)
    assert len(expected) == 6
    # stopped inside epoch 2, the resumed run trains it again from its first iteration
    assert learning_rates(work, repeated=(3,) if at == 3 else ()) == expected
    full = json.loads((uninterrupted / 'run_info.json').read_text())
    assert resumed['epochs'] == full['epochs'] == 3
    assert ('after epoch 1' if at == 2 else 'in epoch 2 (iteration 3)') in str(err.value)


def test_sigkill_during_a_save_leaves_no_temporary_for_good(one_epoch: Path, tiny_data: Path,
                                                            tmp_path: Path, capsys) -> None:
    """The temp file of a write killed with SIGKILL (as atomic_write names it) is removed when
    the next run starts in the work dir; a live process's temp file is left alone."""
    work = copy_run(one_epoch, tmp_path / 'wd')
    writer = subprocess.Popen(
        [sys.executable, '-c', 'import os, sys, time\n'
         'with open(f"{sys.argv[1]}.tmp{os.getpid()}", "wb") as f:\n'
         '    f.write(bytes(2**20)); f.flush(); print("writing", flush=True); time.sleep(60)',
         str(work / 'epoch_2.pth')], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == 'writing\n'
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    stale = work / f'epoch_2.pth.tmp{writer.pid}'
    live = work / f'last_checkpoint.tmp{os.getpid()}'
    live.write_text('a write in progress')
    assert stale.stat().st_size == 2**20
    build_train_cfg(TINY_CFG, work_dir=str(work), data_root=str(tiny_data), epochs=2,
                    resume=True)
    assert not stale.exists() and live.exists()
    assert 'removed 1 unfinished write(s) of a stopped run' in capsys.readouterr().err
    live.unlink()


# -- NaN loss, crash-safe checkpoint ordering -----------------------------------------------

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(one_epoch: Path, tiny_data: Path,
                                                           tmp_path: Path) -> None:
    work = copy_run(one_epoch, tmp_path / 'wd')
    before = snapshot(work)
    cfg, info = build_train_cfg(
        TINY_CFG, work_dir=str(work), data_root=str(tiny_data), epochs=2, resume=True,
        cfg_options={'model.decode_head.loss_decode.0.loss_weight': float('nan')})
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg, info)
    message = str(err.value)
    assert message.startswith('loss became nan in epoch 2, iteration 1 (global 5)')
    assert f'the last good checkpoint {work / "epoch_1.pth"} is unchanged' in message
    assert '--resume' in message and 'learning rate' in message
    after = snapshot(work)
    for name, value in before.items():  # every file of the good run is untouched
        assert after[name] == value, name
    assert not list(work.glob('epoch_2*')) and not list(work.glob('*.tmp*'))


def test_save_failure_keeps_previous_checkpoint(one_epoch: Path, tiny_data: Path,
                                                tmp_path: Path) -> None:
    """A write that fails mid-way (disk full: /dev/full gives a real ENOSPC) while epoch 2 is
    saved leaves epoch_1.pth, the best checkpoint and last_checkpoint as they were
    (mmengine's own CheckpointHook deletes epoch_1.pth before writing epoch_2.pth)."""
    work = copy_run(one_epoch, tmp_path / 'wd')
    before = snapshot(work)
    (work / f'epoch_2.pth.tmp{os.getpid()}').symlink_to('/dev/full')
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(work), data_root=str(tiny_data),
                                epochs=2, resume=True)
    from smallseg.engine.atomic_io import SaveError
    with pytest.raises(SaveError) as err:
        train(cfg, info)
    assert str(err.value).startswith(f'cannot save checkpoint {work / "epoch_2.pth"} '
                                     '(No space left on device); nothing was written; the '
                                     'disk is full: free space, then continue with --resume')
    after = snapshot(work)
    for name, value in before.items():
        assert after[name] == value, name
    assert not (work / 'epoch_2.pth').exists() and not list(work.glob('*.tmp*'))
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')


# -- determinism ----------------------------------------------------------------------------

@pytest.mark.slow
def test_seed_and_deterministic_give_identical_runs(tiny_data: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (('a', 7), ('b', 7), ('c', 8)):
        info = train_tiny(tiny_data, tmp_path / name, epochs=1, seed=seed, deterministic=True)
        assert info['seed'] == seed and info['deterministic'] is True
        rows = val_scalars(tmp_path / name)
        log = next((tmp_path / name).glob('*/vis_data/scalars.json')).read_text()
        losses = [json.loads(line)['loss'] for line in log.splitlines() if '"loss"' in line]
        state = torch.load(tmp_path / name / 'epoch_1.pth', weights_only=False)['state_dict']
        runs[name] = (rows, losses, state)
    (rows_a, loss_a, state_a), (rows_b, loss_b, state_b), (_, loss_c, _) = runs.values()
    drop = {'time', 'data_time', 'step'}
    metrics_a = [{k: v for k, v in r.items() if k not in drop} for r in rows_a]
    metrics_b = [{k: v for k, v in r.items() if k not in drop} for r in rows_b]
    assert metrics_a == metrics_b and 'mDice' in metrics_a[0]
    assert loss_a == loss_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert loss_a != loss_c, 'another seed trains differently'


# -- distributed ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_distributed_training_on_cpu(tiny_data: Path, tmp_path: Path) -> None:
    work = tmp_path / 'wd'
    env = dict(cli_env(), PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', TINY_CFG, '2', '--data-root', str(tiny_data),
         '--work-dir', str(work), '--epochs', '1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'rank 0/2: finished 1 epochs' in out and 'rank 1/2: finished 1 epochs' in out
    assert sorted(p.name for p in work.glob('*.pth')) == ['best_mDice_epoch_1.pth',
                                                           'epoch_1.pth']
    log = next(work.glob('*/*.log')).read_text()
    assert 'Distributed training: True' in log
    assert 'Epoch(train) [1][2/2]' in log  # 16 images / (2 processes x batch 4)
    info = json.loads((work / 'run_info.json').read_text())
    assert info['epochs'] == 1 and info['best_val_mdice'] is not None

    results = tmp_path / 'results.json'
    env['PORT'] = str(free_port())
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', TINY_CFG, str(work / 'best_mDice_epoch_1.pth'), '2',
         '--data-root', str(tiny_data), '--work-dir', str(tmp_path / 'test'), '--results',
         str(results)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert json.loads(results.read_text())['models']['tiny_unet']['test_mdice'] is not None


def test_each_validated_epoch_writes_one_resumable_checkpoint_with_its_best_score(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mmengine writes the epoch's full checkpoint before validation and again after a new best
    score; SafeCheckpointHook writes it once, after validation, with the best score in it."""
    from smallseg.engine import atomic_io
    written: list[str] = []
    real_write = atomic_io.atomic_write

    def recording_write(path, data, **kwargs):
        written.append(Path(path).name)
        real_write(path, data, **kwargs)
    monkeypatch.setattr(atomic_io, 'atomic_write', recording_write)
    work = tmp_path / 'wd'
    info = train_tiny(tiny_data, work, epochs=2, seed=0, cfg_options=TWO_ITERS)
    pth = [name for name in written if name.endswith('.pth')]
    assert [n for n in pth if n.startswith('epoch_')] == ['epoch_1.pth', 'epoch_2.pth']
    # each epoch's best file (if any) is written in the same job, before the epoch file
    assert pth.index('epoch_1.pth') < pth.index('epoch_2.pth')
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_2.pth')
    saved = torch.load(work / 'epoch_2.pth', weights_only=False, map_location='cpu')
    assert saved['meta']['epoch'] == 2 and 'optimizer' in saved
    hub = saved['message_hub']['runtime_info']
    assert hub['best_ckpt'] == info['best_checkpoint']
    assert round(hub['best_score'] / 100.0, 4) == info['best_val_mdice']


def test_checkpoints_format_the_config_text_once(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint holds the config's text; yapf formats it once per run, not per save
    (two saves per improving epoch, 0.3 s each for a model config)."""
    from mmengine.config import Config
    formatted: list[int] = []
    real = Config.pretty_text.fget

    def counting(cfg):
        formatted.append(1)
        return real(cfg)
    monkeypatch.setattr(Config, 'pretty_text', property(counting))
    work = tmp_path / 'wd'
    train_tiny(tiny_data, work, epochs=3, seed=0, cfg_options=TWO_ITERS)
    saved = [torch.load(work / name, weights_only=False, map_location='cpu')['meta']['cfg']
             for name in ('epoch_3.pth', Path((work / 'last_checkpoint').read_text()).name)]
    assert saved[0] == saved[1] and 'max_epochs=3' in saved[0]
    # 4 when the Runner is built (its log and config dumps), 1 for all the run's checkpoints
    # (8 formats in all when each save formats it)
    assert len(formatted) == 5
