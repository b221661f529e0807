"""tools/infer.py: mixed-size / grayscale / RGBA / 16-bit images, batches, one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from smallseg.apis import UserError
from smallseg.apis.infer import list_images, read_image, run_inference, to_bgr_uint8
from smallseg.apis.test import settle_auto

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
UNET = REPO / 'configs' / 'unet_r34.py'
DEEPLAB = REPO / 'configs' / 'deeplabv3plus_r50.py'
CLASSES = ('background', 'round', 'angular')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) U-Net R34 checkpoint in mmengine's format: weights + dataset meta."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(UNET))
    cfg.model.backbone.init_cfg = None
    settle_auto(cfg, None)  # 'auto' values as test and inference settle them without a record
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'unet.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': dict(
        classes=CLASSES, palette=[[0, 0, 0], [230, 25, 75], [60, 180, 75]])}}, path)
    return path


@pytest.fixture(scope='module')
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50x70 RGB JPEG, 64x64 grayscale, 80x40 RGBA, 33x47 16-bit PNG and a broken file."""
    folder = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'rgb.jpg'), rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'gray.png'), rng.integers(0, 256, (64, 64), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (40, 80, 4), dtype=np.uint8), 'RGBA').save(
        folder / 'rgba.png')
    cv2.imwrite(str(folder / 'deep.png'), rng.integers(0, 65536, (33, 47), dtype=np.uint16))
    (folder / 'broken.jpg').write_bytes(b'this is not a jpeg')
    (folder / 'notes.txt').write_text('not an image, not listed')
    return folder


def _infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'tools/infer.py', *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: ')
    return lines[0]


def test_conversions_and_listing(images):
    assert [p.name for p in list_images(images)] == [
        'broken.jpg', 'deep.png', 'gray.png', 'rgb.jpg', 'rgba.png']
    assert read_image(images / 'gray.png').shape == (64, 64, 3)
    assert read_image(images / 'rgba.png').shape == (40, 80, 3)
    deep = read_image(images / 'deep.png')
    assert deep.dtype == np.uint8 and deep.shape == (33, 47, 3)
    assert to_bgr_uint8(np.full((2, 2), 65535, np.uint16)).max() == 255
    assert to_bgr_uint8(np.full((2, 2, 1), 0.5, np.float32)).max() == 128
    with pytest.raises(ValueError):
        read_image(images / 'broken.jpg')


def test_folder_of_mixed_images(checkpoint, images, tmp_path):
    out = tmp_path / 'out'
    proc = _infer(UNET, checkpoint, images, '--out', out, '--batch-size', '3')
    assert proc.returncode == 0, proc.stderr
    assert 'Traceback' not in proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith('warning:')]
    assert len(warnings) == 1 and 'broken.jpg' in warnings[0]
    assert 'infer' in proc.stderr  # the tqdm progress bar
    expected = {'rgb': (50, 70), 'gray': (64, 64), 'rgba': (40, 80), 'deep': (33, 47)}
    assert sorted(p.stem for p in (out / 'masks').glob('*.png')) == sorted(expected)
    for stem, (h, w) in expected.items():
        mask = np.asarray(Image.open(out / 'masks' / f'{stem}.png'))
        assert mask.shape == (h, w) and mask.dtype == np.uint8 and mask.max() < len(CLASSES)
        overlay = Image.open(out / 'overlays' / f'{stem}.png')
        assert overlay.size == (w, h) and overlay.mode == 'RGB'
    rows = (out / 'predictions.csv').read_text().splitlines()
    assert rows[0].startswith('image,mask,width,height,px.background') and len(rows) == 5
    assert '4 of 5 images segmented, 1 unreadable skipped' in proc.stdout


def test_single_image_file_in_process(checkpoint, images, tmp_path):
    summary = run_inference(UNET, checkpoint, images / 'rgba.png', tmp_path, batch_size=2,
                            overlays=False, progress=False)
    assert summary['written'] == 1 and summary['classes'] == list(CLASSES)
    assert np.asarray(Image.open(tmp_path / 'masks' / 'rgba.png')).shape == (40, 80)
    assert not (tmp_path / 'overlays').exists()
    with pytest.raises(UserError, match=r'^cannot read image .*broken\.jpg'):
        run_inference(UNET, checkpoint, images / 'broken.jpg', tmp_path, progress=False)
    with pytest.raises(UserError, match='batch-size'):
        run_inference(UNET, checkpoint, images, tmp_path, batch_size=0)


def test_missing_checkpoint(images, tmp_path):
    line = _one_error_line(_infer(UNET, tmp_path / 'nope.pth', images, '--out', tmp_path))
    assert 'nope.pth not found' in line


def test_checkpoint_of_another_model(checkpoint, images, tmp_path):
    line = _one_error_line(_infer(DEEPLAB, checkpoint, images, '--out', tmp_path))
    assert 'U-Net checkpoint' in line and 'unet_r34.py' in line


def test_nothing_readable(checkpoint, tmp_path):
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'a.png').write_bytes(b'\x89PNG broken')
    (bad / 'b.jpg').write_bytes(b'')
    line = _one_error_line(_infer(UNET, checkpoint, bad, '--out', tmp_path / 'o',
                                  '--data-root', 'ignored'))
    assert 'none of the 2 images could be read' in line
