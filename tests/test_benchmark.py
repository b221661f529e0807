"""Smoke test: the benchmark tool runs one step of both the config and the stock baseline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli_env

pytestmark = pytest.mark.slow


def test_benchmark_one_step(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark.py', 'configs/unet_r34.py', '--data-root',
         str(tiny_data), '--steps', '1', '--warmup', '0', '--batch-size', '2', '--out', str(out),
         '--img-size', '64', '64'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '| unet_r34 |' in proc.stdout and '| stock_mmseg_deeplabv3plus_r50-d8 |' in proc.stdout
    result = json.loads(out.read_text())
    ours, stock = result['runs']['unet_r34'], result['runs']['stock_mmseg_deeplabv3plus_r50-d8']
    for run in (ours, stock):
        assert run['step_s'] > 0 and run['tflop_per_step'] > 0 and run['infer_img_s'] > 0
        assert 0 <= run['data_share'] < 1
    # stock DeepLabV3+ at stride 8 costs far more than U-Net-R34 per step
    assert stock['tflop_per_step'] > ours['tflop_per_step']
    assert result['matmul_peak_tflops']['fp32'] > 0
