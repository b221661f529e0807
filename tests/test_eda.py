"""EDA tool: planted problems are reported exactly, clean data reports none, numbers are right."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from smallseg.eda import PROBLEM_KINDS, scan_dataset

from conftest import load_script

CLASSES = ('background', 'round', 'angular')  # the default config's classes (K = 3)
S = 32  # image side


run_eda = load_script('eda/run_eda.py')


def good_mask(seed: int) -> np.ndarray:
    """Two separate class-1 squares and one class-2 square at seed-dependent places."""
    m = np.zeros((S, S), np.uint8)
    o = seed % 4
    m[2 + o:8 + o, 2:8] = 1
    m[2 + o:8 + o, 20:26] = 1
    m[18:28, 10 + o:16 + o] = 2
    return m


def jpg_bytes(seed: int, h: int = S, w: int = S) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', img)[1].tobytes()


def png_bytes(arr: np.ndarray) -> bytes:
    return cv2.imencode('.png', arr)[1].tobytes()


class Builder:
    """Writes files into ``root/{img,labels}/<split>`` and remembers the masks it wrote."""

    def __init__(self, root: Path) -> None:
        self.root, self.masks, self.seed = root, {}, 0

    def img(self, split: str, stem: str, data: bytes | None = None) -> bytes:
        self.seed += 1
        data = jpg_bytes(self.seed) if data is None else data
        p = self.root / 'img' / split / f'{stem}.jpg'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return data

    def mask(self, split: str, stem: str, arr: np.ndarray | None = None,
             data: bytes | None = None) -> None:
        if data is None:
            arr = good_mask(len(self.masks)) if arr is None else arr
            self.masks[(split, stem)] = arr
            data = png_bytes(arr)
        p = self.root / 'labels' / split / f'{stem}.png'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def pair(self, split: str, stem: str, arr: np.ndarray | None = None) -> bytes:
        self.mask(split, stem, arr)
        return self.img(split, stem)


def make_clean(root: Path) -> Builder:
    b = Builder(root)
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        for i in range(n):
            b.pair(split, f'{split}{i}')
    return b


def make_problems(root: Path) -> tuple[Builder, set[tuple[str, str, str]]]:
    """A dataset with every problem kind planted once, and the expected (split, file, kind)."""
    b = Builder(root)
    g0 = b.pair('train', 'good0')
    g1 = b.pair('train', 'good1')
    b.pair('train', 'good2')
    b.mask('train', 'zdup')
    b.img('train', 'zdup', g0)                       # same bytes as good0, same split
    b.img('train', 'noMask')
    b.mask('train', 'noImg')
    b.mask('train', 'trunc')
    b.img('train', 'trunc', jpg_bytes(99)[:300])     # truncated JPEG
    b.mask('train', 'zero')
    b.img('train', 'zero', b'')                      # zero-byte image
    b.img('train', 'textmask')
    b.mask('train', 'textmask', data=b'this is not a png\n')
    b.img('train', 'zeromask')
    b.mask('train', 'zeromask', data=b'')
    b.pair('train', 'allignore', np.full((S, S), 255, np.uint8))
    b.img('train', 'size')
    b.mask('train', 'size', np.vstack([good_mask(0), np.zeros((8, S), np.uint8)]))
    b.pair('train', 'bg', np.zeros((S, S), np.uint8))
    b.pair('train', 'single', np.full((S, S), 2, np.uint8))
    oor = good_mask(1)
    oor[0, :4], oor[-1, :2] = 3, 7
    b.pair('train', 'oor', oor)
    b.img('train', 'rgb')
    b.mask('train', 'rgb', data=png_bytes(np.dstack([good_mask(2)] * 3)))
    b.img('train', 'pal')
    pal = Image.fromarray(good_mask(3))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    buf = root / 'pal.png'
    pal.save(buf)
    b.mask('train', 'pal', data=buf.read_bytes())
    b.masks[('train', 'pal')] = good_mask(3)
    buf.unlink()
    b.pair('val', 'val0')
    b.mask('val', 'leak')
    b.img('val', 'leak', g1)                         # same bytes as train/good1: leakage
    expected = {
        ('train', 'img/train/zdup.jpg', 'duplicate_within_split'),
        ('train', 'img/train/noMask.jpg', 'image_without_mask'),
        ('train', 'labels/train/noImg.png', 'mask_without_image'),
        ('train', 'img/train/trunc.jpg', 'unreadable_image'),
        ('train', 'img/train/zero.jpg', 'unreadable_image'),
        ('train', 'labels/train/textmask.png', 'unreadable_mask'),
        ('train', 'labels/train/zeromask.png', 'empty_mask'),
        ('train', 'labels/train/allignore.png', 'empty_mask'),
        ('train', 'labels/train/size.png', 'size_mismatch'),
        ('train', 'labels/train/bg.png', 'background_only'),
        ('train', 'labels/train/single.png', 'single_class'),
        ('train', 'labels/train/oor.png', 'out_of_range_values'),
        ('train', 'labels/train/rgb.png', 'not_single_channel'),
        ('train', 'labels/train/pal.png', 'not_single_channel'),
        ('val', 'img/val/leak.jpg', 'duplicate_across_splits'),
    }
    return b, expected


# masks that feed the statistics: the pairs the dataset check accepts for training (complete,
# readable, same size, one channel or a palette, values in range, some pixel labelled)
USABLE_TRAIN = ('good0', 'good1', 'good2', 'zdup', 'bg', 'single', 'pal')


@pytest.fixture(scope='module')
def problem_run(tmp_path_factory) -> tuple[Builder, set, dict, int]:
    root = tmp_path_factory.mktemp('bad')
    b, expected = make_problems(root / 'data')
    out = root / 'out'
    rc = run_eda.main(['--data-root', str(root / 'data'), '--out', str(out), '--workers', '2'])
    return b, expected, json.loads((out / 'eda_summary.json').read_text()), rc


def test_planted_problems_reported_exactly(problem_run) -> None:
    _, expected, s, rc = problem_run
    assert rc == 0  # reported, not raised; non-zero only with --strict
    got = {(p['split'], p['file'], p['kind']) for p in s['problems']}
    assert got == expected
    assert all(p['detail'] for p in s['problems'])
    assert set(s['problem_counts']) == set(PROBLEM_KINDS)
    assert sum(s['problem_counts'].values()) == len(expected)
    assert s['label_errors'] == {'empty_mask': 2, 'background_only': 1, 'single_class': 1,
                                 'out_of_range_values': 1, 'not_single_channel': 2,
                                 'duplicate_within_split': 1, 'duplicate_across_splits': 1,
                                 'near_duplicate_within_split': 0,
                                 'near_duplicate_across_splits': 0}
    assert s['splits']['train']['integrity'] == {
        'images': 16, 'masks': 16, 'images_without_mask': 1, 'masks_without_image': 1,
        'complete_pairs': 15, 'unreadable': 4, 'size_mismatch': 1, 'usable_pairs': 7}
    assert s['splits']['val']['integrity']['complete_pairs'] == 2
    assert s['splits_missing'] == ['test']
    oor = next(p for p in s['problems'] if p['kind'] == 'out_of_range_values')
    assert '3 (4 px)' in oor['detail'] and '7 (2 px)' in oor['detail']
    assert any('leakage' in w for w in s['strategy']['warnings'])


def test_pixel_statistics_match_numpy(problem_run) -> None:
    b, _, s, _ = problem_run
    masks = np.stack([b.masks[('train', stem)] for stem in USABLE_TRAIN])
    counts = np.array([(masks == c).sum() for c in range(3)])
    assert [s['pixel_counts']['train'][n] for n in CLASSES] == counts.tolist()
    share = counts / counts.sum()
    assert [s['pixel_share']['train'][n] for n in CLASSES] == pytest.approx(share, abs=1e-6)
    assert s['ignore_pixels']['train'] == S * S
    assert s['out_of_range_pixels']['train'] == 6
    with_cls = [int(sum((m == c).any() for m in masks)) for c in range(3)]
    assert [s['images_with_class']['train'][n] for n in CLASSES] == with_cls


def test_outputs_written(problem_run) -> None:
    out = Path(problem_run[2]['data_root']).parent / 'out'
    for name in ('eda_summary.txt', 'eda_summary.json', 'README.md', 'class_distribution.png',
                 'image_sizes.png', 'objects_per_image.png', 'object_sizes.png', 'samples.png'):
        assert (out / name).stat().st_size > 0, name
        if name.endswith('.png'):
            assert cv2.imread(str(out / name)) is not None
    text = (out / 'eda_summary.txt').read_text()
    assert 'labels/train/oor.png: out_of_range_values' in text
    readme = (out / 'README.md').read_text()
    assert '![samples](samples.png)' in readme and '| split | images |' in readme
    # the suggested size as the tools' option, (w, h)
    suggested = json.loads((out / 'eda_summary.json').read_text())['strategy']['img_size']
    option = re.search(r'tools/train.py \S+ --data-root \S+ '
                       r'--cfg-options "img_size=\((\d+),(\d+)\)"', readme)
    assert option and [int(v) for v in option.groups()] == suggested


def test_clean_dataset_has_no_problems_and_right_objects(tmp_path) -> None:
    b = make_clean(tmp_path / 'data')
    out = tmp_path / 'out'
    assert run_eda.main(['--data-root', str(tmp_path / 'data'), '--out', str(out),
                         '--strict']) == 0
    s = json.loads((out / 'eda_summary.json').read_text())
    assert s['problems'] == [] and sum(s['problem_counts'].values()) == 0
    for split, n in (('train', 4), ('val', 2), ('test', 2)):
        assert s['splits'][split]['integrity'] == {
            'images': n, 'masks': n, 'images_without_mask': 0, 'masks_without_image': 0,
            'complete_pairs': n, 'unreadable': 0, 'size_mismatch': 0, 'usable_pairs': n}
    opi = s['objects_per_image']['train']
    assert opi['round']['mean'] == 2 and opi['round']['histogram'] == {'2': 4}
    assert opi['angular']['max'] == 1
    assert s['object_sizes']['train']['round'] == {
        'count': 8, 'min': 36, 'p10': 36.0, 'median': 36.0, 'mean': 36.0, 'p90': 36.0, 'max': 36}
    train = np.stack([m for (sp, _), m in b.masks.items() if sp == 'train'])
    freq = np.array([(train == c).mean() for c in range(3)])
    st = s['strategy']
    med = np.median(freq) / freq
    assert st['class_weights'] == pytest.approx(med / med.mean(), abs=1e-3)
    inv = 1 / freq
    assert st['class_weights_inverse_frequency'] == pytest.approx(inv / inv.mean(), abs=1e-3)
    assert st['num_classes'] == 3 and st['img_size'] == [32, 32]
    assert 'median' in st['weight_formula']
    assert any('imbalance' in w for w in st['warnings'])        # background ~15x angular
    assert any('val has only 2' in w for w in st['warnings'])   # tiny split


def test_strict_exit_code(problem_run, tmp_path) -> None:
    data = Path(problem_run[2]['data_root'])
    assert run_eda.main(['--data-root', str(data), '--out', str(tmp_path), '--strict']) == 1


def test_missing_or_empty_data_root(tmp_path, capsys) -> None:
    missing = tmp_path / 'nope'
    assert run_eda.main(['--data-root', str(missing), '--out', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0] and 'img/<split>' in err[0]
    (tmp_path / 'empty' / 'img' / 'train').mkdir(parents=True)
    (tmp_path / 'empty' / 'img' / 'train' / 'a.png').write_bytes(png_bytes(good_mask(0)))
    assert run_eda.main(['--data-root', str(tmp_path / 'empty'), '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'expected' in err[0] and '.png' in err[0]


def test_config_metainfo_and_ignore_index(tmp_path) -> None:
    make_clean(tmp_path / 'data')
    b = Builder(tmp_path / 'data')
    m = good_mask(0)
    m[0, 0] = 255
    b.mask('test', 'ign', m)
    b.img('test', 'ign', jpg_bytes(1000))
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("metainfo = dict(classes=('bg', 'x', 'y'), palette=[[0, 0, 0], [9, 9, 9], "
                   "[8, 8, 8]])\n")
    out = tmp_path / 'out'
    assert run_eda.main(['--data-root', str(tmp_path / 'data'), '--out', str(out),
                         '--config', str(cfg)]) == 0
    s = json.loads((out / 'eda_summary.json').read_text())
    assert s['classes'] == ['bg', 'x', 'y'] and s['problems'] == []
    assert s['ignore_pixels']['test'] == 1
    scan = scan_dataset(tmp_path / 'data', CLASSES, ignore_index=None, progress=False)
    assert [(p.file, p.kind) for p in scan.problems] == [('labels/test/ign.png',
                                                          'out_of_range_values')]


def test_default_root_is_generated(tmp_path, monkeypatch) -> None:
    """No --data-root: the real embedded dataset is generated, scanned, and its pixel
    shares agree with an independent count of the mask files."""
    monkeypatch.chdir(tmp_path)
    assert run_eda.main(['--out', 'o']) == 0  # default config found from the repo root
    summary = json.loads(Path('o/eda_summary.json').read_text())
    assert summary['problems'] == []
    assert summary['splits']['train']['integrity']['complete_pairs'] == 200
    counts = np.zeros(3, dtype=np.int64)
    for f in Path('data/default/labels/train').glob('*.png'):
        counts += np.bincount(cv2.imread(str(f), cv2.IMREAD_UNCHANGED).ravel(), minlength=3)
    share = summary['pixel_share']['train']
    values = [share[c] for c in ('background', 'round', 'angular')]
    np.testing.assert_allclose(values, counts / counts.sum(), atol=1e-6)


def picture(seed: int) -> np.ndarray:
    """A smooth 64x64 colour picture (shapes on a gradient), as photographs and scans are."""
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = np.linspace(40, 200, 64, dtype=np.uint8)[None, :, None]
    for _ in range(4):
        x, y, r = (int(v) for v in rng.integers(8, 56, 3) // (1, 1, 3))
        cv2.circle(img, (x, y), r + 4, tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    return img


def test_reencoded_copy_in_another_split_is_a_near_duplicate(tmp_path) -> None:
    b = Builder(tmp_path / 'data')
    for i, split in enumerate(('train', 'train', 'train', 'val', 'val')):
        b.mask(split, f'p{i}', np.zeros((64, 64), np.uint8) + (np.arange(64) > 30))
        b.img(split, f'p{i}', cv2.imencode('.jpg', picture(i))[1].tobytes())
    # train's p0 again in val, re-encoded at JPEG quality 80: other bytes, the same picture
    again = cv2.imencode('.jpg', cv2.imread(str(tmp_path / 'data/img/train/p0.jpg')),
                         [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    b.mask('val', 'again', np.zeros((64, 64), np.uint8) + (np.arange(64) > 30))
    b.img('val', 'again', again)
    out = tmp_path / 'out'
    assert run_eda.main(['--data-root', str(tmp_path / 'data'), '--out', str(out),
                         '--strict']) == 1
    s = json.loads((out / 'eda_summary.json').read_text())
    found = [(p['split'], p['file'], p['kind']) for p in s['problems']
             if p['kind'].startswith(('duplicate', 'near_duplicate'))]
    assert found == [('val', 'img/val/again.jpg', 'near_duplicate_across_splits')]
    detail = next(p['detail'] for p in s['problems'] if p['file'] == 'img/val/again.jpg')
    assert detail.startswith('looks like img/train/p0.jpg')
    assert any('near_duplicate_across_splits' in w and 'leakage' in w
               for w in s['strategy']['warnings'])
