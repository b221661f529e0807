"""Bad input to the tools: one clear ``error:`` line (exit 2, no traceback) for each kind, and
nothing a previous run wrote (checkpoints, last_checkpoint, run_info.json, results.json) is
touched. Odd images (any size, grayscale, RGBA, 16-bit) are not bad input: they train and infer.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from smallseg.utils.errors import UserError
from smallseg.apis.results import update_results
from smallseg.apis.train import build_train_cfg, train
from smallseg.engine.atomic_io import AtomicLocalBackend, SaveError, atomic_write, save_error

from conftest import REPO, TINY_CFG, cli_env, load_script




TRAIN, TEST = load_script('tools/train.py'), load_script('tools/test.py')


class Message(str):
    """The error line; ``.stderr`` holds everything the tool printed there."""
    stderr = ''


def cli(capsys, tool, *args: str) -> Message:
    """Run a tool's ``main()`` in this process; return its one ``error:`` line (exit 2)."""
    old = sys.argv
    sys.argv = [f'{tool.__name__}.py', *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            tool.main()
    finally:
        sys.argv = old
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-2000:]
    assert 'Traceback' not in err
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, err[-2000:]
    msg = Message(errors[0][len('error: '):])
    msg.stderr = err
    return msg


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope='module')
def previous(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch run plus a results.json: what a bad command must not damage."""
    work = tmp_path_factory.mktemp('previous') / 'wd'
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(work), data_root=str(tiny_data),
                                epochs=1, seed=0)
    train(cfg, info)
    update_results(work / 'results.json', 'tiny_unet', {'test_mdice': 0.5, 'val_mdice': 0.5})
    return work


@pytest.fixture()
def unchanged(previous: Path):
    """Yields the previous run's folder; afterwards every file in it must be byte-identical."""
    before = snapshot(previous)
    assert {'epoch_1.pth', 'last_checkpoint', 'run_info.json', 'results.json'} <= set(before)
    yield previous
    assert snapshot(previous) == before


def data_args(tiny_data: Path, work: Path) -> list[str]:
    return ['--data-root', str(tiny_data), '--work-dir', str(work)]


# 1-3: the config file ----------------------------------------------------------------------

def test_mistyped_config_name(capsys, tiny_data, unchanged) -> None:
    msg = cli(capsys, TRAIN, 'configs/unet_r43.py', *data_args(tiny_data, unchanged))
    assert msg == 'config file configs/unet_r43.py not found; did you mean configs/unet_r34.py?'


def test_config_with_a_syntax_error(capsys, tiny_data, unchanged, tmp_path) -> None:
    bad = tmp_path / 'broken.py'
    bad.write_text("_base_ = ['%s']\nmodel = dict(\n" % (REPO / 'configs/unet_r34.py'))
    msg = cli(capsys, TRAIN, bad, *data_args(tiny_data, unchanged))
    assert msg.startswith(f'cannot read config {bad}: SyntaxError') and 'broken.py' in msg


def test_config_with_a_missing_base(capsys, tiny_data, unchanged, tmp_path) -> None:
    bad = tmp_path / 'orphan.py'
    bad.write_text("_base_ = ['./_base_/models/nope.py']\n")
    msg = cli(capsys, TRAIN, bad, *data_args(tiny_data, unchanged))
    assert msg.startswith(f'cannot read config {bad}:') and 'nope.py' in msg


# 4-6: --cfg-options and config values ------------------------------------------------------

@pytest.mark.parametrize('option, expected', [
    ('train_cfg.max_epoch=3', "unknown key 'train_cfg.max_epoch' (not in the config and not an "
                              'argument of EpochBasedTrainLoop); did you mean '
                              'train_cfg.max_epochs?'),
    ('optim_wrapper.optimizer.lrr=0.1', "unknown key 'optim_wrapper.optimizer.lrr' (not in the "
                                        'config and not an argument of AdamW); did you mean '
                                        'optim_wrapper.optimizer.lr?'),
    ('max_epochs=3', "unknown key 'max_epochs' (not in the config and not an argument of the "
                     'runner); did you mean train_cfg.max_epochs?'),
])
def test_unknown_cfg_options_key(capsys, tiny_data, unchanged, option, expected) -> None:
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, unchanged), '--cfg-options',
              option)
    assert msg == f'--cfg-options {option.split("=")[0]}: {expected}'


def test_known_but_new_cfg_options_keys_are_accepted(tiny_data) -> None:
    from smallseg.apis.config import load_config
    cfg = load_config(TINY_CFG, {'train_dataloader.dataset.img_suffix': '.png',
                                 'sync_bn': 'torch', 'randomness.seed': 3,
                                 'default_hooks.checkpoint.save_optimizer': False})
    assert cfg.train_dataloader.dataset.img_suffix == '.png' and cfg.sync_bn == 'torch'


def test_misspelt_component_type(capsys, tiny_data, unchanged) -> None:
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, unchanged), '--cfg-options',
              'model.decode_head.type=UNetHeed')
    assert msg == ("model.decode_head.type: 'UNetHeed' is not a registered component; did you "
                   "mean 'UNetHead'?")


def test_class_names_and_num_classes_disagree(capsys, tiny_data, unchanged) -> None:
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, unchanged), '--cfg-options',
              'model.decode_head.num_classes=4')
    assert msg.startswith('the config names 3 classes (background, round, angular) but '
                          'model.decode_head.num_classes is 4')


def test_epochs_below_one(capsys, tiny_data, unchanged) -> None:
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, unchanged), '--epochs', '0')
    assert msg == '--epochs must be at least 1, got 0'


# 7-9: checkpoints --------------------------------------------------------------------------

def test_resume_with_a_checkpoint_of_another_model(capsys, tiny_data, unchanged) -> None:
    msg = cli(capsys, TRAIN, 'configs/deeplabv3plus_r50.py', *data_args(tiny_data, unchanged),
              '--resume', '--no-pretrained')
    assert msg.startswith(f'--resume: checkpoint {unchanged / "epoch_1.pth"} is a U-Net '
                          'checkpoint; use configs/unet_r34.py')
    assert 'use another --work-dir' in msg


def test_checkpoint_with_another_class_count(capsys, tiny_data, unchanged) -> None:
    four = 'model.decode_head.num_classes=4'
    msg = cli(capsys, TEST, TINY_CFG, unchanged / 'epoch_1.pth', '--data-root', tiny_data,
              '--work-dir', unchanged, '--results', unchanged / 'results.json',
              '--cfg-options', four)
    assert msg == (f'checkpoint {unchanged / "epoch_1.pth"} predicts 3 classes, the config 4: '
                   'pass the config it was trained with')
    names = '[background,round,angular,other]'
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, unchanged), '--resume',
              '--cfg-options', four, f'train_dataloader.dataset.metainfo.classes={names}',
              f'val_dataloader.dataset.metainfo.classes={names}')
    assert msg.startswith(f'--resume: checkpoint {unchanged / "epoch_1.pth"} predicts 3 '
                          'classes, the config 4')


def test_resume_from_a_truncated_checkpoint(capsys, tiny_data, previous, tmp_path) -> None:
    work = tmp_path / 'wd'
    work.mkdir()
    data = (previous / 'epoch_1.pth').read_bytes()
    (work / 'epoch_1.pth').write_bytes(data[:len(data) // 2])
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    before = snapshot(work)
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, work), '--resume')
    assert msg.startswith(f'--resume: checkpoint {work / "epoch_1.pth"} cannot be read')
    assert snapshot(work) == before


# 10-11: where results go -------------------------------------------------------------------

def test_work_dir_is_a_file(capsys, tiny_data, unchanged) -> None:
    target = unchanged / 'run_info.json'
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, target))
    assert msg == f'work dir {target} is a file, not a folder; pass --work-dir DIR'


def test_work_dir_not_writable(capsys, tiny_data, unchanged) -> None:
    target = unchanged / 'results.json' / 'wd'  # a folder inside a file cannot be created
    msg = cli(capsys, TRAIN, TINY_CFG, *data_args(tiny_data, target))
    assert msg == (f'work dir {target} is not writable (Not a directory); pass --work-dir DIR '
                   'on a writable disk')


def test_disk_full_while_saving_keeps_the_previous_file(unchanged, tmp_path) -> None:
    """A real ENOSPC: the temp file of the write is a link to /dev/full."""
    ckpt = tmp_path / 'epoch_1.pth'
    shutil.copy(unchanged / 'epoch_1.pth', ckpt)
    before = digest(ckpt)
    tmp = Path(f'{ckpt}.tmp{os.getpid()}')
    tmp.symlink_to('/dev/full')
    with pytest.raises(SaveError) as err:
        AtomicLocalBackend().put(b'new checkpoint bytes', ckpt)  # what mmengine calls
    assert str(err.value) == (f'cannot save checkpoint {ckpt} (No space left on device); the '
                              'previous epoch_1.pth is intact; the disk is full: free space, '
                              'then continue with --resume')
    assert digest(ckpt) == before and not tmp.exists() and not tmp.is_symlink()
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert 'nothing was written' in str(save_error(tmp_path / 'x.json', exc))
    tmp.symlink_to('/dev/full')
    with pytest.raises(UserError, match='No space left on device'):
        atomic_write(ckpt, 'text')
    assert digest(ckpt) == before


# 12-13: the data ---------------------------------------------------------------------------

def test_missing_data_root(capsys, unchanged, tmp_path) -> None:
    missing = tmp_path / 'nope'
    msg = cli(capsys, TRAIN, TINY_CFG, '--data-root', missing, '--work-dir', unchanged)
    assert msg.startswith(f'data root {missing} does not exist; pass --data-root DIR')


def test_corrupt_dataset(capsys, tiny_data, unchanged, tmp_path) -> None:
    root = tmp_path / 'd'
    shutil.copytree(tiny_data, root)
    victim = sorted((root / 'img' / 'train').iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:200])
    msg = cli(capsys, TRAIN, TINY_CFG, '--data-root', root, '--work-dir', unchanged)
    assert msg.startswith(f'dataset check failed for {root}: 1 of 24 image/mask pairs cannot be '
                          'used for training')
    assert f'  unreadable_image (1 file): img/train/{victim.name} [cannot decode' in msg.stderr


# 14: odd images are fine -------------------------------------------------------------------

@pytest.fixture(scope='module')
def odd_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNG images of different sizes and modes: gray, gray 16-bit, RGB 16-bit, RGBA, palette."""
    root = tmp_path_factory.mktemp('odd') / 'data'
    rng = np.random.default_rng(0)
    kinds = {
        'gray': lambda h, w: rng.integers(0, 256, (h, w), dtype=np.uint8),
        'gray16': lambda h, w: rng.integers(0, 65536, (h, w), dtype=np.uint16),
        'rgb16': lambda h, w: rng.integers(0, 65536, (h, w, 3), dtype=np.uint16),
        'rgba': lambda h, w: rng.integers(0, 256, (h, w, 4), dtype=np.uint8),
        'rgb': lambda h, w: rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
    }
    sizes = [(48, 80), (64, 64), (97, 33), (20, 150)]
    for split, n in (('train', 8), ('val', 4)):
        (root / 'img' / split).mkdir(parents=True)
        (root / 'labels' / split).mkdir(parents=True)
        for i in range(n):
            kind = list(kinds)[i % len(kinds)]
            h, w = sizes[i % len(sizes)]
            name = f'{kind}_{i}'
            cv2.imwrite(str(root / 'img' / split / f'{name}.png'), kinds[kind](h, w))
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4:h // 2, w // 4:w // 2] = 1 + i % 2
            cv2.imwrite(str(root / 'labels' / split / f'{name}.png'), mask)
        pal = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).quantize(16)
        pal.save(root / 'img' / split / 'palette.png')
        cv2.imwrite(str(root / 'labels' / split / 'palette.png'), np.eye(40, dtype=np.uint8))
    return root


def test_any_size_and_mode_trains_and_infers(odd_images: Path, tmp_path: Path) -> None:
    from smallseg.apis.infer import run_inference
    opts = {f'{k}.dataset.img_suffix': '.png' for k in ('train_dataloader', 'val_dataloader',
                                                        'test_dataloader')}
    cfg, info = build_train_cfg(TINY_CFG, work_dir=str(tmp_path / 'wd'),
                                data_root=str(odd_images), epochs=1, cfg_options=opts)
    info = train(cfg, info)
    assert info['epochs'] == 1 and info['best_val_mdice'] is not None
    assert 'dropped_pairs' not in info
    summary = run_inference(TINY_CFG, info['best_checkpoint'], odd_images / 'img' / 'train',
                            tmp_path / 'pred', progress=False)
    assert summary['written'] == summary['images'] == 9 and not summary['skipped']
    for src in (odd_images / 'img' / 'train').iterdir():
        with Image.open(src) as img:
            size = img.size
        with Image.open(tmp_path / 'pred' / 'masks' / src.name) as pred:
            assert pred.size == size and pred.mode == 'L', src.name


def test_one_line_error_in_a_real_process(tiny_data, unchanged) -> None:
    """The same contract through a subprocess: stderr has one error line, no traceback."""
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', TINY_CFG, *data_args(tiny_data, unchanged),
         '--cfg-options', 'train_cfg.max_epoch=3'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --cfg-options train_cfg.max_epoch: unknown key 'train_cfg.max_epoch' (not in "
        'the config and not an argument of EpochBasedTrainLoop); did you mean '
        'train_cfg.max_epochs?')
    assert json.loads((unchanged / 'run_info.json').read_text())['epochs'] == 1
