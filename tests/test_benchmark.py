"""The benchmark tool, run once on the tiny config: step breakdown of the config and of stock
mmseg, the epoch breakdown of real 2-epoch training runs of this tree and of HEAD (``--compare
HEAD``, a git worktree). Sanity only (positive times, shares adding up): timings on a shared
test machine mean nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_CFG, cli_env
from smallseg.benchmark.epochs import fit_schedule
from smallseg.benchmark.step import PHASES

pytestmark = pytest.mark.slow


def _worktrees() -> str:
    return subprocess.run(['git', 'worktree', 'list', '--porcelain'], cwd=REPO, text=True,
                          capture_output=True, check=True).stdout


@pytest.fixture(scope='module')
def bench(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """JSON and printed tables of one step (batch 2) and 2 epochs, this tree against HEAD."""
    out = tmp_path_factory.mktemp('bench') / 'bench.json'
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark.py', TINY_CFG, '--data-root', str(tiny_data),
         '--steps', '1', '--warmup', '0', '--batch-size', '2', '--epochs', '2',
         '--compare', 'HEAD', '--out', str(out)],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_step_breakdown_shares_add_up(bench: tuple[dict, str]) -> None:
    result, stdout = bench
    assert '| tiny_unet |' in stdout and '| stock_mmseg_deeplabv3plus_r50-d8 |' in stdout
    ours, stock = result['runs']['tiny_unet'], result['runs']['stock_mmseg_deeplabv3plus_r50-d8']
    for run in (ours, stock):
        shares = run['step_shares']
        assert set(shares) == set(PHASES) and abs(sum(shares.values()) - 1) < 0.01
        assert all(shares[k] > 0 for k in ('preprocess', 'forward', 'backward', 'optimizer'))
        assert run['data_share'] == shares['data'] >= 0
        assert run['step_s'] > 0 and run['tflop_per_step'] > 0 and run['infer_img_s'] > 0
        assert run['achieved_tflops'] > 0 and run['share_of_matmul_peak'] > 0
    assert stock['tflop_per_step'] > ours['tflop_per_step']  # stride 8 against a tiny U-Net
    assert ours['peak_used'] == ('bf16' if ours['precision'].endswith('bfloat16') else 'fp32')
    assert result['matmul_peak_tflops'][ours['peak_used']] > 0
    assert set(result['machine']['cpu_flags']) == {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}
    assert result['machine']['torch'] == torch.__version__


def test_epoch_timer_records_every_epoch_of_a_real_run(bench: tuple[dict, str]) -> None:
    result, _ = bench
    for label, runs in result['epoch_runs'].items():
        run = runs['tiny_unet']
        assert [e['epoch'] for e in run['epochs']] == [1, 2], label
        assert run['package'] == str(Path(run['tree']) / 'smallseg' / '__init__.py')
        for epoch in run['epochs']:
            assert epoch['iters'] == 8  # 16 images, batch 2
            assert min(epoch['train_s'], epoch['val_s'], epoch['checkpoint_s']) > 0
            parts = epoch['train_s'] + epoch['val_s'] + epoch['checkpoint_s']
            assert 0.9 * epoch['epoch_s'] < parts <= epoch['epoch_s'] + 1e-3
        assert run['epochs_used'] == [2]
        assert run['median']['epoch_s'] == run['epochs'][1]['epoch_s']
        assert 0.9 < sum(run['shares'].values()) <= 1.001
        assert run['precision'] and run['commit']


def test_compare_head_gives_a_ratio_for_both_trees(bench: tuple[dict, str]) -> None:
    result, stdout = bench
    assert 'speed-up (HEAD / this)' in stdout
    this = result['epoch_runs']['this']['tiny_unet']
    head = result['epoch_runs']['HEAD']['tiny_unet']
    assert this['tree'] == str(REPO) and head['tree'] != this['tree']
    assert not Path(head['tree']).exists() and head['tree'] not in _worktrees()  # removed
    assert head['commit'] == result['revisions']['HEAD']['commit']
    compare = result['compare']['configs']['tiny_unet']
    assert compare['epoch_s_this'] == this['median']['epoch_s']
    assert compare['epoch_s_rev'] == head['median']['epoch_s']
    assert compare['speedup'] == pytest.approx(compare['epoch_s_rev'] / compare['epoch_s_this'],
                                               abs=1e-3)


def test_fit_schedule_ends_the_decay_at_the_last_epoch() -> None:
    warm_poly = [dict(type='LinearLR', by_epoch=True, begin=0, end=1),
                 dict(type='PolyLR', by_epoch=True, begin=1, end=30)]
    assert [(s['begin'], s['end']) for s in fit_schedule(warm_poly, 3)] == [(0, 1), (1, 3)]
    assert [(s['begin'], s['end']) for s in fit_schedule(warm_poly, 1)] == [(0, 1), (0, 1)]
