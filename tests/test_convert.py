"""Converters: COCO <-> index masks (round trips), colour masks -> index masks, the splitter."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from smallseg.utils.errors import UserError
from smallseg.convert import (coco_to_masks, convert_rgb_folder, index_to_rgb, masks_to_coco,
                              parse_palette, rgb_to_index, split_dataset)
from smallseg.eda import scan_dataset

from conftest import REPO, cli_env

CLASSES = ('background', 'cat', 'dog')


def _rle_str(binary: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


def _rle_list(binary: np.ndarray) -> dict:
    """Uncompressed RLE (counts as a list, column-major), as COCO writes crowd regions."""
    flat = binary.astype(np.uint8).ravel(order='F')
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return dict(size=list(binary.shape), counts=counts)


def build_coco(path: Path) -> dict:
    """3 images, categories 1=cat, 5=dog, 7=bird: polygons, multi-polygons, compressed and
    uncompressed RLE, an overlap (small object on a big one), an image with no annotation."""
    blob = np.zeros((40, 50), np.uint8)
    cv2.circle(blob, (35, 28), 8, 1, -1)
    crowd = np.zeros((40, 50), np.uint8)
    crowd[2:9, 34:48] = 1
    anns = [
        # image 1 (40x50): a big cat rectangle with a small dog triangle inside it
        dict(id=1, image_id=1, category_id=1, iscrowd=0,
             segmentation=[[2, 2, 30, 2, 30, 30, 2, 30]]),
        dict(id=2, image_id=1, category_id=5, iscrowd=0, segmentation=[[8, 8, 20, 8, 14, 18]]),
        dict(id=3, image_id=1, category_id=5, iscrowd=0, segmentation=_rle_str(blob)),
        dict(id=4, image_id=1, category_id=1, iscrowd=1, segmentation=_rle_list(crowd)),
        # image 2 (24x32): a two-part cat (multi-polygon) and an unmapped bird
        dict(id=5, image_id=2, category_id=1, iscrowd=0,
             segmentation=[[1, 1, 8, 1, 8, 8, 1, 8], [20, 10, 30, 10, 30, 20, 20, 20]]),
        dict(id=6, image_id=2, category_id=7, iscrowd=0, segmentation=[[10, 2, 18, 2, 18, 9]]),
    ]
    coco = dict(images=[dict(id=1, file_name='a.jpg', height=40, width=50),
                        dict(id=2, file_name='sub/b.jpg', height=24, width=32),
                        dict(id=3, file_name='c.jpg', height=16, width=16)],
                annotations=anns,
                categories=[dict(id=1, name='cat'), dict(id=5, name='dog'),
                            dict(id=7, name='bird')])
    path.write_text(json.dumps(coco))
    return coco


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def masks_of(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read(p) for p in sorted(folder.glob('*.png'))}


def test_coco_to_masks_polygons_rle_overlap_mapping(tmp_path: Path) -> None:
    build_coco(tmp_path / 'coco.json')
    s = coco_to_masks(tmp_path / 'coco.json', tmp_path / 'm', mapping='cat=1,dog=2')
    assert s['classes'] == list(CLASSES) and s['images'] == 3 and not s['skipped']
    a, b, c = (read(tmp_path / 'm' / f'{n}.png') for n in 'abc')
    assert a.shape == (40, 50) and b.shape == (24, 32) and c.shape == (16, 16)
    assert a.dtype == np.uint8 and a.ndim == 2
    assert a[25, 5] == 1            # the cat rectangle
    assert a[11, 14] == 2           # the small dog triangle stays on top of the cat
    assert a[28, 35] == 2           # compressed RLE
    assert a[5, 40] == 1            # uncompressed RLE crowd region, painted as its class
    assert a[38, 2] == 0
    assert b[4, 4] == 1 and b[15, 25] == 1  # both parts of the multi-polygon
    assert b[3, 16] == 0            # bird is not mapped: background
    assert not c.any()              # no annotation: all background
    ignored = coco_to_masks(tmp_path / 'coco.json', tmp_path / 'mi', mapping='1=1,5=2',
                            crowd='ignore')
    assert read(tmp_path / 'mi' / 'a.png')[5, 40] == 255 and ignored['pixels'][255] > 0


def test_coco_masks_coco_masks_round_trip_is_identical(tmp_path: Path) -> None:
    build_coco(tmp_path / 'coco.json')
    coco_to_masks(tmp_path / 'coco.json', tmp_path / 'm1', mapping='cat=1,dog=2')
    first = masks_of(tmp_path / 'm1')
    for mode in ('instance', 'semantic'):
        out = tmp_path / f'{mode}.json'
        coco = masks_to_coco(tmp_path / 'm1', CLASSES, out, mode=mode)
        assert [c['name'] for c in coco['categories']] == ['cat', 'dog']
        assert {i['file_name'] for i in coco['images']} == {'a.jpg', 'b.jpg', 'c.jpg'}
        per_image = {}
        for ann in coco['annotations']:
            per_image.setdefault((ann['image_id'], ann['category_id']), []).append(ann)
            assert ann['area'] == int(mask_utils.area(
                dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode())))
        if mode == 'semantic':  # one annotation per class and image
            assert all(len(v) == 1 for v in per_image.values())
        else:  # image a: the cat rectangle, the crowd block (separate), dog triangle + circle
            assert len(per_image[(1, 1)]) == 2 and len(per_image[(1, 2)]) == 2
        coco_to_masks(out, tmp_path / f'm2_{mode}')  # no mapping: category ids 1, 2 -> 1, 2
        second = masks_of(tmp_path / f'm2_{mode}')
        assert second.keys() == first.keys()
        for name in first:
            np.testing.assert_array_equal(second[name], first[name], err_msg=f'{mode} {name}')


def test_masks_coco_masks_random_masks_and_polygons(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / 'src'
    src.mkdir()
    for i in range(4):
        m = np.zeros((30 + i, 40), np.uint8)
        for _ in range(5):
            x, y = rng.integers(0, 36), rng.integers(0, 26)
            m[y:y + rng.integers(2, 9), x:x + rng.integers(2, 9)] = rng.integers(1, 3)
        cv2.imwrite(str(src / f'{i}.png'), m)
    masks_to_coco(src, CLASSES, tmp_path / 'rle.json')
    coco_to_masks(tmp_path / 'rle.json', tmp_path / 'back')
    for name, m in masks_of(src).items():
        np.testing.assert_array_equal(read(tmp_path / 'back' / name), m)
    # polygons: outlines, close but not exact
    masks_to_coco(src, CLASSES, tmp_path / 'poly.json', encoding='polygon')
    poly = json.loads((tmp_path / 'poly.json').read_text())
    assert all(isinstance(a['segmentation'], list) for a in poly['annotations'])
    coco_to_masks(tmp_path / 'poly.json', tmp_path / 'poly')
    for name, m in masks_of(src).items():
        back = read(tmp_path / 'poly' / name)
        agree = (back == m).mean()
        assert agree > 0.9, (name, agree)


def test_coco_errors(tmp_path: Path) -> None:
    build_coco(tmp_path / 'coco.json')
    with pytest.raises(UserError, match="no category 'horse'.*1=cat"):
        coco_to_masks(tmp_path / 'coco.json', tmp_path / 'm', mapping='horse=1')
    with pytest.raises(UserError, match='not found'):
        coco_to_masks(tmp_path / 'missing.json', tmp_path / 'm')
    (tmp_path / 'bad.json').write_text('{"foo": 1}')
    with pytest.raises(UserError, match='not a COCO annotation file'):
        coco_to_masks(tmp_path / 'bad.json', tmp_path / 'm')
    src = tmp_path / 'src'
    src.mkdir()
    cv2.imwrite(str(src / 'x.png'), np.full((4, 4), 7, np.uint8))
    with pytest.raises(UserError, match=r'values \[7\] outside the 3 classes'):
        masks_to_coco(src, CLASSES)


def test_coco_cli(tmp_path: Path) -> None:
    build_coco(tmp_path / 'coco.json')
    (tmp_path / 'images' / 'sub').mkdir(parents=True)
    for name in ('a.jpg', 'sub/b.jpg', 'c.jpg'):
        cv2.imwrite(str(tmp_path / 'images' / name), np.zeros((8, 8, 3), np.uint8))
    proc = subprocess.run(
        [sys.executable, 'datasets/coco_to_masks.py', str(tmp_path / 'coco.json'), '--out',
         str(tmp_path / 'd/labels/train'), '--map', 'cat=1,dog=2', '--images',
         str(tmp_path / 'images'), '--img-out', str(tmp_path / 'd/img/train')],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "classes=('background', 'cat', 'dog')" in proc.stdout
    assert sorted(p.name for p in (tmp_path / 'd/img/train').iterdir()) == [
        'a.jpg', 'b.jpg', 'c.jpg']
    proc = subprocess.run(
        [sys.executable, 'datasets/coco_to_masks.py', str(tmp_path / 'coco.json'), '--out',
         str(tmp_path / 'x'), '--map', 'horse=1'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.startswith("error: --map: no category 'horse'")


PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75)]


def test_rgb_masks_to_index_masks(tmp_path: Path) -> None:
    assert parse_palette('0,0,0;230,25,75;60,180,75') == PALETTE
    assert parse_palette('#000000,#e6194b,#3cb44b') == PALETTE
    assert parse_palette('configs/unet_r34.py') == PALETTE
    with pytest.raises(UserError, match='two classes'):
        parse_palette('0,0,0;0,0,0')
    rng = np.random.default_rng(1)
    src = tmp_path / 'rgb'
    src.mkdir()
    index = {}
    for i in range(3):
        m = rng.integers(0, 3, (12, 10 + i)).astype(np.uint8)
        index[f'{i}.png'] = m
        rgb = index_to_rgb(m, PALETTE)
        cv2.imwrite(str(src / f'{i}.png'), rgb[:, :, ::-1])  # cv2 writes BGR
    s = convert_rgb_folder(src, tmp_path / 'idx', PALETTE)
    assert s['files'] == 3 and s['unknown_colours'] == 0
    for name, m in index.items():
        np.testing.assert_array_equal(read(tmp_path / 'idx' / name), m)
    # an anti-aliased pixel: an error by default (nothing written), nearest or ignore on request
    rgb = index_to_rgb(index['0.png'], PALETTE)
    rgb[0, 0] = (228, 27, 70)
    cv2.imwrite(str(src / '0.png'), rgb[:, :, ::-1])
    with pytest.raises(UserError, match=r'1 colours are not in the palette: \(228, 27, 70\) 1 px'):
        convert_rgb_folder(src, tmp_path / 'fail', PALETTE)
    assert not (tmp_path / 'fail').exists()
    convert_rgb_folder(src, tmp_path / 'near', PALETTE, unknown='nearest')
    assert read(tmp_path / 'near' / '0.png')[0, 0] == 1
    mask, missing = rgb_to_index(rgb, PALETTE, unknown='ignore')
    assert mask[0, 0] == 255 and missing == {(228, 27, 70): 1}


def _pairs(root: Path, strata: dict[tuple[int, ...], int]) -> None:
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    n = 0
    for classes, count in strata.items():
        for _ in range(count):
            m = np.zeros((8, 8), np.uint8)
            for j, c in enumerate(classes):
                m[j * 3:j * 3 + 2, :] = c
            cv2.imwrite(str(root / 'masks' / f'{n:03d}.png'), m)
            cv2.imwrite(str(root / 'images' / f'{n:03d}.jpg'),
                        np.full((8, 8, 3), n, np.uint8))
            n += 1


def test_split_is_stratified_seeded_and_complete(tmp_path: Path) -> None:
    strata = {(1,): 30, (2,): 20, (1, 2): 10, (): 4}
    _pairs(tmp_path, strata)
    s = split_dataset(tmp_path / 'images', tmp_path / 'masks', tmp_path / 'out', seed=3)
    # 64 pairs at 70/15/15, rounded per stratum: 21+14+7+3, 5+3+1+1, 4+3+2+0
    assert s['counts'] == {'train': 45, 'val': 10, 'test': 9}
    all_stems = sorted(p.stem for p in (tmp_path / 'images').iterdir())
    got = sorted(sum(s['splits'].values(), []))
    assert got == all_stems  # every pair once
    for key, count in strata.items():
        name = '+'.join(map(str, key)) or 'background'
        for split, ratio in zip(('train', 'val', 'test'), (0.7, 0.15, 0.15)):
            assert abs(s['strata'][split].get(name, 0) - count * ratio) <= 1, (name, split)
    again = split_dataset(tmp_path / 'images', tmp_path / 'masks', tmp_path / 'again', seed=3)
    assert again['splits'] == s['splits']
    other = split_dataset(tmp_path / 'images', tmp_path / 'masks', tmp_path / 'other', seed=4)
    assert other['splits'] != s['splits']
    scan = scan_dataset(tmp_path / 'out', CLASSES, progress=False)
    assert scan.errors() == []
    assert {k: v.usable_pairs for k, v in scan.splits.items()} == s['counts']
    assert json.loads((tmp_path / 'out' / 'split.json').read_text())['seed'] == 3
    with pytest.raises(UserError, match='is not empty'):
        split_dataset(tmp_path / 'images', tmp_path / 'masks', tmp_path / 'out')


def test_split_unpaired_and_cli(tmp_path: Path) -> None:
    _pairs(tmp_path, {(1,): 6, (2,): 4})
    (tmp_path / 'images' / 'extra.jpg').write_bytes((tmp_path / 'images' / '000.jpg')
                                                    .read_bytes())
    with pytest.raises(UserError, match="1 files have no partner.*extra"):
        split_dataset(tmp_path / 'images', tmp_path / 'masks', tmp_path / 'o')
    proc = subprocess.run(
        [sys.executable, 'datasets/split_dataset.py', '--images', str(tmp_path / 'images'),
         '--masks', str(tmp_path / 'masks'), '--out', str(tmp_path / 'o'), '--ratios', '0.6',
         '0.2', '0.2', '--skip-unpaired', '--mode', 'symlink'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'split into train 6, val 2, test 2' in proc.stdout
    assert (tmp_path / 'o' / 'img' / 'train').iterdir().__next__().is_symlink()


def test_coco_annotations_not_painted_are_counted_and_named(tmp_path: Path) -> None:
    coco = build_coco(tmp_path / 'coco.json')
    coco['annotations'] += [
        dict(id=20, image_id=3, category_id=1, iscrowd=0, segmentation=[[2, 2, 9, 2]]),  # 2 pts
        dict(id=21, image_id=3, category_id=1, iscrowd=0,
             segmentation=[[2, 2, 6, 6, 10, 10]]),                   # 3 points on a line
        dict(id=22, image_id=99, category_id=1, iscrowd=0,
             segmentation=[[1, 1, 8, 1, 8, 8]]),                     # no image 99
        dict(id=23, image_id=3, category_id=42, iscrowd=0,
             segmentation=[[1, 1, 8, 1, 8, 8]])]                     # no category 42
    (tmp_path / 'coco.json').write_text(json.dumps(coco))
    s = coco_to_masks(tmp_path / 'coco.json', tmp_path / 'm', mapping='cat=1,dog=2')
    assert s['skipped_counts'] == {'unknown image_id': 1, 'covers no pixel': 2,
                                   'unknown category_id': 1}
    assert s['annotations'] == 5  # the good ones; the unmapped bird is left out on purpose
    assert any(line.startswith('annotation 22: image_id 99 is not in the images list')
               for line in s['skipped'])
    assert 'annotation 21 of c.jpg: its shape covers no pixel' in ' '.join(s['skipped'])
    proc = subprocess.run(
        [sys.executable, 'datasets/coco_to_masks.py', str(tmp_path / 'coco.json'), '--out',
         str(tmp_path / 'cli'), '--map', 'cat=1,dog=2'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ('warning: 4 annotation(s) not painted (1 unknown image_id, 2 covers no pixel, '
            '1 unknown category_id):') in proc.stderr
