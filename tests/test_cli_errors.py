"""Bad input to the tools gives one clear line on stderr, exit code 2, no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, cli_env


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


def test_train_missing_config() -> None:
    proc = run_tool('tools/train.py', 'configs/nope.py')
    assert_one_line_error(proc, 'configs/nope.py', 'not found', 'deeplabv3plus_r50.py')


def test_train_missing_data_root(tmp_path: Path) -> None:
    missing = tmp_path / 'no_such_dir'
    proc = run_tool('tools/train.py', 'configs/unet_r34.py', '--data-root', str(missing),
                    '--work-dir', str(tmp_path / 'wd'))
    assert_one_line_error(proc, str(missing), '--data-root')
    assert not (tmp_path / 'wd').exists(), 'nothing should be created before the data is checked'


def test_train_data_root_without_split_folders(tmp_path: Path) -> None:
    (tmp_path / 'img' / 'train').mkdir(parents=True)
    proc = run_tool('tools/train.py', 'configs/unet_r34.py', '--cfg-options',
                    f'data_root={tmp_path}')
    assert_one_line_error(proc, str(tmp_path / 'labels' / 'train'), 'missing')


def test_train_missing_pretrained_file(tiny_data: Path, tmp_path: Path) -> None:
    proc = run_tool('tools/train.py', 'configs/unet_r34.py', '--data-root', str(tiny_data),
                    '--pretrained', str(tmp_path / 'r34.pth'))
    assert_one_line_error(proc, '--pretrained', 'r34.pth')


def test_test_missing_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    proc = run_tool('tools/test.py', 'configs/unet_r34.py', str(tmp_path / 'best.pth'),
                    '--data-root', str(tiny_data))
    assert_one_line_error(proc, 'best.pth', 'not found')


@pytest.mark.parametrize('content', [b'', b'not a checkpoint'])
def test_test_unreadable_checkpoint(tiny_data: Path, tmp_path: Path, content: bytes) -> None:
    ckpt = tmp_path / 'bad.pth'
    ckpt.write_bytes(content)
    proc = run_tool('tools/test.py', 'configs/unet_r34.py', str(ckpt), '--data-root',
                    str(tiny_data))
    assert_one_line_error(proc, 'bad.pth', 'cannot be read')


def test_test_checkpoint_of_other_model(tiny_data: Path, tmp_path: Path) -> None:
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from smallseg.apis.test import settle_auto
    cfg = Config.fromfile('configs/unet_r34.py')
    cfg.model.backbone.init_cfg = None
    settle_auto(cfg, None)  # 'auto' values as tools/test.py settles them without a record
    ckpt = tmp_path / 'unet.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, ckpt)
    proc = run_tool('tools/test.py', 'configs/deeplabv3plus_r50.py', str(ckpt), '--data-root',
                    str(tiny_data))
    assert_one_line_error(proc, 'U-Net checkpoint', 'configs/unet_r34.py')


def test_unknown_cfg_option_type() -> None:
    proc = run_tool('tools/train.py', 'configs/unet_r34.py', '--cfg-options',
                    'train_cfg.max_epochs.foo=1')
    assert_one_line_error(proc, '--cfg-options')
