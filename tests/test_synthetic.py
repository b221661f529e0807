"""Tests of the default-dataset generator :mod:`smallseg.synthetic` and its script."""
from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from smallseg.synthetic import SPLITS, generate_dataset

REPO = Path(__file__).resolve().parents[1]
TINY = {'train': 3, 'val': 2, 'test': 2}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob('*')) if p.is_file()}


def _read_split(root: Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    imgs, masks = [], []
    for path in sorted((root / 'img' / split).glob('*.jpg')):
        imgs.append(cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        masks.append(cv2.imread(str(root / 'labels' / split / f'{path.stem}.png'),
                                cv2.IMREAD_UNCHANGED))
    return imgs, masks


@pytest.fixture(scope='module')
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('tiny') / 'data'
    generate_dataset(root, seed=3, counts=TINY, size=64, progress=False, workers=1)
    return root


@pytest.fixture(scope='module')
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """200 train + 40 test images at the real size (a few seconds)."""
    root = tmp_path_factory.mktemp('sample') / 'data'
    info = generate_dataset(root, seed=0, counts={'train': 200, 'val': 0, 'test': 40}, size=256,
                            progress=False)
    train, test = _read_split(root, 'train'), _read_split(root, 'test')
    return {'root': root, 'info': info, 'train': train, 'test': test}


def test_deterministic_bytes(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / 'again'
    generate_dataset(again, seed=3, counts=TINY, size=64, progress=False, workers=2)
    assert _files(again) == _files(tiny)  # serial and parallel runs agree byte for byte

    other = tmp_path / 'other'
    generate_dataset(other, seed=4, counts=TINY, size=64, progress=False, workers=1)
    a, b = _files(tiny), _files(other)
    assert set(a) != set(b)
    assert sorted(v for k, v in a.items() if k.endswith('.jpg')) != \
        sorted(v for k, v in b.items() if k.endswith('.jpg'))


def test_layout_and_dtypes(tiny: Path) -> None:
    info = json.loads((tiny / 'dataset_info.json').read_text())
    assert info['seed'] == 3 and info['size'] == 64 and info['counts'] == TINY
    assert info['classes'] == ['background', 'round', 'angular']
    for split in SPLITS:
        imgs = sorted((tiny / 'img' / split).iterdir())
        masks = sorted((tiny / 'labels' / split).iterdir())
        assert len(imgs) == len(masks) == TINY[split]
        assert [p.stem for p in imgs] == [p.stem for p in masks]
        for img_path, mask_path in zip(imgs, masks):
            assert re.fullmatch(r'\d{12}_\d{4}', img_path.stem)
            assert img_path.suffix == '.jpg' and mask_path.suffix == '.png'
            img = cv2.imread(str(img_path), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            assert img.shape == (64, 64, 3) and img.dtype == np.uint8
            assert mask.shape == (64, 64) and mask.dtype == np.uint8
            assert set(np.unique(mask).tolist()) <= {0, 1, 2}
        shares = info['splits'][split]['pixel_share']
        assert abs(sum(shares.values()) - 1.0) < 1e-4
    all_stems = [p.stem for s in SPLITS for p in (tiny / 'img' / s).iterdir()]
    assert len(set(all_stems)) == len(all_stems)


def test_idempotent_force_and_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / 'data'
    assert generate_dataset(root, seed=1, counts=TINY, size=64, progress=False)['generated']
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob('*')}
    second = generate_dataset(root, seed=1, counts=TINY, size=64, progress=True)
    assert not second['generated'] and 'nothing to do' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in root.rglob('*')} == mtimes
    assert generate_dataset(root, seed=1, counts=TINY, size=64, progress=False,
                            force=True)['generated']

    # a missing file or changed parameters trigger regeneration; stale images are removed
    next((root / 'labels' / 'val').iterdir()).unlink()
    assert generate_dataset(root, seed=1, counts=TINY, size=64, progress=False)['generated']
    smaller = {'train': 2, 'val': 2, 'test': 1}
    generate_dataset(root, seed=1, counts=smaller, size=64, progress=False)
    for split in SPLITS:
        assert len(list((root / 'img' / split).iterdir())) == smaller[split]
        assert len(list((root / 'labels' / split).iterdir())) == smaller[split]
    small = tmp_path / 'small'
    generate_dataset(small, seed=1, counts=smaller, size=64, progress=False)
    assert _files(small) == _files(root)


def test_script(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'cli'
    args = ['--out', str(out), '--seed', '2', '--num-train', '2', '--num-val', '1',
            '--num-test', '1', '--size', '48']
    first = subprocess.run([sys.executable, 'datasets/make_default_dataset.py', *args], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert len(list((out / 'img' / 'train').glob('*.jpg'))) == 2
    assert json.loads((out / 'dataset_info.json').read_text())['counts'] == \
        {'train': 2, 'val': 1, 'test': 1}

    script = runpy.run_path(str(REPO / 'datasets' / 'make_default_dataset.py'))
    capsys.readouterr()
    assert script['main'](args) == 0 and 'nothing to do' in capsys.readouterr().out
    assert script['main']([*args, '--force', '--quiet']) == 0
    assert capsys.readouterr().out == ''


def test_one_labelled_object_per_image(sample: dict) -> None:
    for masks in (sample['train'][1], sample['test'][1]):
        for mask in masks:
            fg = (mask > 0).astype(np.uint8)
            n_components = cv2.connectedComponents(fg, connectivity=4)[0] - 1
            assert n_components == 1
            assert len(np.unique(mask[mask > 0])) == 1


def test_statistics_match_seed_report(sample: dict) -> None:
    masks = sample['train'][1]
    labels = np.array([int(m.max()) for m in masks])
    fg = np.array([(m > 0).mean() for m in masks])
    assert 0.50 <= (labels == 1).mean() <= 0.60  # about 55/45 round/angular images
    assert 0.06 <= fg.mean() <= 0.12  # seed: 9.1 % foreground pixels
    assert fg.min() < 0.02 and fg.max() > 0.20  # small to large objects
    assert ((fg > 0.02) & (fg < 0.20)).mean() > 0.5
    shares = sample['info']['splits']['train']['pixel_share']
    assert 0.88 <= shares['background'] <= 0.94
    assert shares['round'] > shares['angular'] > 0.02


def test_labelled_object_contrasts_with_surroundings(sample: dict) -> None:
    """The labelled object stands out (mean colour vs a band around it) in most images."""
    distances = []
    for img, mask in zip(*sample['train']):
        fg = (mask > 0).astype(np.uint8)
        band = cv2.dilate(fg, np.ones((9, 9), np.uint8)) - fg
        inside = img[fg > 0].astype(np.float64).mean(0)
        outside = img[band > 0].astype(np.float64).mean(0)
        distances.append(np.linalg.norm(inside - outside))
    assert np.mean(np.array(distances) > 25) > 0.8


def _dice(pred: np.ndarray, gt: np.ndarray, cls: int) -> float:
    p, g = pred == cls, gt == cls
    return 2.0 * np.logical_and(p, g).sum() / max(p.sum() + g.sum(), 1)


def test_classes_not_separable_by_colour(sample: dict) -> None:
    """A nearest-class-mean colour classifier fails: the classes do not differ by colour."""
    imgs, masks = sample['train']
    pixels = np.concatenate([i.reshape(-1, 3) for i in imgs]).astype(np.float32)
    labels = np.concatenate([m.ravel() for m in masks])
    means = np.stack([pixels[labels == c].mean(0) for c in range(3)])

    test_imgs, test_masks = sample['test']
    x = np.concatenate([i.reshape(-1, 3) for i in test_imgs]).astype(np.float32)
    y = np.concatenate([m.ravel() for m in test_masks])
    pred = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), 1)
    for cls in (1, 2):
        assert _dice(pred, y, cls) < 0.5

    # object level: the mean colour of the object does not tell its class either
    def object_colours(im: list[np.ndarray], ms: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return (np.stack([i[m > 0].mean(0) for i, m in zip(im, ms)]),
                np.array([int(m.max()) for m in ms]))

    f_train, c_train = object_colours(imgs, masks)
    f_test, c_test = object_colours(test_imgs, test_masks)
    centroids = np.stack([f_train[c_train == c].mean(0) for c in (1, 2)])
    guess = 1 + np.argmin(((f_test[:, None] - centroids[None]) ** 2).sum(-1), 1)
    assert (guess == c_test).mean() < 0.7
