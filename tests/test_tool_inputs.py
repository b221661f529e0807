"""Bad input to tools/test.py and tools/infer.py, and --cfg-options in every tool: one
``error:`` line (exit 2) before any work, nothing written where the error says so."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import TINY_CFG, load_script




TRAIN, TEST, INFER = (load_script(f'tools/{name}.py') for name in ('train', 'test', 'infer'))


def cli(capsys, tool, *args) -> tuple[str, str, str]:
    """Run a tool's ``main()`` here; returns its one ``error:`` line, stdout and stderr."""
    old, sys.argv = sys.argv, [f'{tool.__name__}.py', *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            tool.main()
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2, err[-2000:]
    assert 'Traceback' not in err
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, err[-2000:]
    return errors[0][len('error: '):], out, err


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny U-Net's freshly initialised weights as a checkpoint (no training needed)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from smallseg.apis.config import load_config
    from smallseg.apis.test import settle_auto
    init_default_scope('mmseg')
    ckpt = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    cfg = load_config(TINY_CFG)
    settle_auto(cfg, None)  # 'auto' values as tools/test.py settles them without a record
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, ckpt)
    return ckpt


# -- the split a checkpoint is scored on ----------------------------------------------------

def _zero_byte_image(root: Path, stem: str) -> str:
    (root / 'img/test' / f'{stem}.jpg').write_bytes(b'')
    return f'img/test/{stem}.jpg'


def _mask_of_another_size(root: Path, stem: str) -> str:
    cv2.imwrite(str(root / 'labels/test' / f'{stem}.png'), np.zeros((40, 30), np.uint8))
    return f'labels/test/{stem}.png'


def _missing_mask(root: Path, stem: str) -> str:
    (root / 'labels/test' / f'{stem}.png').unlink()
    return f'img/test/{stem}.jpg'


def _value_outside_the_classes(root: Path, stem: str) -> str:
    path = root / 'labels/test' / f'{stem}.png'
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    mask[:4, :4] = 7  # 3 classes: 0, 1, 2 (and 255 = ignore)
    cv2.imwrite(str(path), mask)
    return f'labels/test/{stem}.png'


@pytest.mark.parametrize('plant, kind', [
    (_zero_byte_image, 'unreadable_image'), (_mask_of_another_size, 'size_mismatch'),
    (_missing_mask, 'image_without_mask'), (_value_outside_the_classes, 'out_of_range_values')])
def test_test_split_is_checked_before_scoring(capsys, tiny_data: Path, checkpoint: Path,
                                              tmp_path: Path, plant, kind: str) -> None:
    root = tmp_path / 'data'
    shutil.copytree(tiny_data, root)
    stem = sorted(p.stem for p in (root / 'img/test').glob('*.jpg'))[0]
    bad = plant(root, stem)
    results, out = tmp_path / 'results.json', tmp_path / 'out'
    msg, stdout, stderr = cli(capsys, TEST, TINY_CFG, checkpoint, '--data-root', root,
                              '--work-dir', tmp_path / 'wd', '--results', results, '--out', out)
    assert msg == (f'dataset check failed for {root}: 1 of 8 image/mask pairs cannot be used '
                   'for scoring (1 problem of 1 kind); nothing was evaluated')
    assert f'  {kind} (1 file): {bad} [' in stderr  # the kind's line of the same message
    assert 'mDice' not in stdout and not results.exists() and not list(out.rglob('*.*'))


def test_test_split_check_names_the_kind_and_file(capsys, tiny_data: Path, checkpoint: Path,
                                                  tmp_path: Path) -> None:
    root = tmp_path / 'data'
    shutil.copytree(tiny_data, root)
    stem = sorted(p.stem for p in (root / 'img/val').glob('*.jpg'))[0]
    path = root / 'labels/val' / f'{stem}.png'
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    mask[0, 0] = 7
    cv2.imwrite(str(path), mask)
    msg, _, err = cli(capsys, TEST, TINY_CFG, checkpoint, '--split', 'val', '--data-root', root,
                      '--work-dir', tmp_path / 'wd', '--results', tmp_path / 'r.json')
    assert msg.endswith('nothing was evaluated')
    assert f'out_of_range_values (1 file): labels/val/{stem}.png [values 7 (1 px)' in err
    assert 'a score over part of the split would not be comparable' in err


# -- where the outputs go ------------------------------------------------------------------

@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    """A plain file: nothing can be written 'inside' it (ENOTDIR, also for root)."""
    path = tmp_path / 'plain_file'
    path.write_text('not a folder')
    return path


@pytest.mark.parametrize('option', ['--results', '--out'])
def test_test_output_not_writable_stops_before_evaluating(capsys, tiny_data: Path,
                                                          checkpoint: Path, tmp_path: Path,
                                                          a_file: Path, option: str) -> None:
    target = a_file / ('results.json' if option == '--results' else 'metrics')
    args = {'--results': tmp_path / 'results.json', option: target}
    msg, stdout, stderr = cli(capsys, TEST, TINY_CFG, checkpoint, '--data-root', tiny_data,
                              '--work-dir', tmp_path / 'wd', *[x for kv in args.items()
                                                               for x in kv])
    shown = target if option == '--results' else f'{target}/tiny_unet_test_metrics.json'
    assert msg == (f'{option} {shown} cannot be written (Not a directory); pass a path on a '
                   'writable disk')
    assert 'mDice' not in stdout and 'Epoch(test)' not in stderr  # nothing was evaluated


def test_infer_output_not_writable_stops_before_loading(capsys, tiny_data: Path,
                                                        checkpoint: Path, a_file: Path) -> None:
    msg, _, _ = cli(capsys, INFER, TINY_CFG, checkpoint, tiny_data / 'img/test', '--out',
                    a_file / 'pred', '--no-progress')
    assert msg == (f'output folder {a_file / "pred"} is not writable (Not a directory); pass '
                   '--out DIR on a writable disk')


def test_infer_device_this_machine_does_not_have(capsys, tiny_data: Path, checkpoint: Path,
                                                 tmp_path: Path) -> None:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    msg, _, _ = cli(capsys, INFER, TINY_CFG, checkpoint, tiny_data / 'img/test', '--out',
                    tmp_path / 'pred', '--device', f'cuda:{count}')
    assert msg.startswith(f'--device cuda:{count}: this machine has ')
    assert not list((tmp_path / 'pred').rglob('*.png'))
    msg, _, _ = cli(capsys, INFER, TINY_CFG, checkpoint, tiny_data / 'img/test', '--out',
                    tmp_path / 'pred', '--device', 'gpu0')
    assert msg == "--device 'gpu0' is not a device name; use 'cpu' or 'cuda:0'"


# -- --cfg-options -------------------------------------------------------------------------

@pytest.mark.parametrize('tool', ['train', 'test', 'infer'])
def test_cfg_options_without_equals_or_before_config(capsys, tool: str, tmp_path: Path) -> None:
    module = {'train': TRAIN, 'test': TEST, 'infer': INFER}[tool]
    rest = {'train': [], 'test': ['tiny.pth'], 'infer': ['tiny.pth', 'img', '--out', tmp_path]}
    msg, _, _ = cli(capsys, module, TINY_CFG, *rest[tool], '--cfg-options', 'max_epochs')
    assert msg == ("--cfg-options: 'max_epochs' is not KEY=VALUE (e.g. --cfg-options "
                   'train_cfg.max_epochs=5 train_dataloader.batch_size=4)')
    msg, _, _ = cli(capsys, module, '--cfg-options', 'train_cfg.max_epochs=2', TINY_CFG,
                    *rest[tool])
    assert msg == (f"--cfg-options: '{TINY_CFG}' is not KEY=VALUE; it looks like the config: "
                   'put CONFIG first, then --cfg-options KEY=VALUE ...')
