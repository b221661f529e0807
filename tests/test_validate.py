"""Dataset validation before training: planted problems stop the run (one line per kind), or
are skipped with --skip-invalid; clean data passes quickly; empty splits always stop."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from smallseg.apis.config import load_config, set_data_root
from smallseg.utils.errors import UserError
from smallseg.apis.validate import validate_dataset
from smallseg.eda import scan_dataset

from conftest import REPO, TINY_CFG, cli_env



def cfg_for(root: Path, **options):
    cfg = load_config(TINY_CFG, options or None)
    set_data_root(cfg, root)
    return cfg


@pytest.fixture(scope='module')
def bad_data(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_data with one planted problem of each kind (train and val), and harmless oddities."""
    root = tmp_path_factory.mktemp('bad') / 'data'
    shutil.copytree(tiny_data, root)
    img, lab = root / 'img', root / 'labels'
    trains = sorted(p.stem for p in (img / 'train').glob('*.jpg'))
    vals = sorted(p.stem for p in (img / 'val').glob('*.jpg'))
    (img / 'train' / f'{trains[0]}.jpg').write_bytes(b'')                       # zero-byte
    data = (img / 'train' / f'{trains[1]}.jpg').read_bytes()
    (img / 'train' / f'{trains[1]}.jpg').write_bytes(data[:len(data) // 3])      # truncated
    (lab / 'train' / f'{trains[2]}.png').unlink()                                # no mask
    cv2.imwrite(str(lab / 'train' / 'orphan.png'), np.zeros((64, 64), np.uint8))  # no image
    cv2.imwrite(str(lab / 'train' / f'{trains[3]}.png'), np.zeros((32, 32), np.uint8))  # size
    m = cv2.imread(str(lab / 'train' / f'{trains[4]}.png'), cv2.IMREAD_UNCHANGED)
    m[:4, :4] = 7                                                                 # class 7 of 3
    cv2.imwrite(str(lab / 'train' / f'{trains[4]}.png'), m)
    cv2.imwrite(str(lab / 'val' / f'{vals[0]}.png'), np.zeros((64, 64, 3), np.uint8))  # RGB
    # harmless: ignore pixels (255), a palette PNG, an image shared by train and val
    m = cv2.imread(str(lab / 'train' / f'{trains[5]}.png'), cv2.IMREAD_UNCHANGED)
    m[:3, :] = 255
    cv2.imwrite(str(lab / 'train' / f'{trains[5]}.png'), m)
    pal = Image.fromarray(cv2.imread(str(lab / 'train' / f'{trains[6]}.png'),
                                     cv2.IMREAD_UNCHANGED)).convert('P')
    pal.save(lab / 'train' / f'{trains[6]}.png')
    shutil.copy(img / 'train' / f'{trains[7]}.jpg', img / 'val' / f'{vals[1]}.jpg')
    return root


EXPECTED_BAD = {  # loader -> stems that must be dropped (known from the fixture order)
    'train': [0, 1, 2, 3, 4],
    'val': [0],
}


def test_clean_dataset_passes_quickly(tiny_data: Path) -> None:
    cfg = cfg_for(tiny_data)
    report = validate_dataset(cfg)
    assert report.ok and not report.warnings and not report.dropped
    assert [(c.split, c.images, c.valid) for c in report.checks] == [('train', 16, 16),
                                                                       ('val', 8, 8)]
    assert 'exclude' not in cfg.train_dataloader.dataset


def test_planted_problems_stop_with_one_line_per_kind(bad_data: Path) -> None:
    with pytest.raises(UserError) as err:
        validate_dataset(cfg_for(bad_data))
    text = str(err.value)
    lines = text.splitlines()
    assert lines[0].startswith(f'dataset check failed for {bad_data}: 6 of 24 image/mask pairs')
    assert 'nothing was trained' in lines[0]
    kinds = {line.split()[0]: line.strip() for line in lines[1:-1]}
    assert set(kinds) == {'image_without_mask', 'mask_without_image', 'unreadable_image',
                          'size_mismatch', 'not_single_channel', 'out_of_range_values'}
    zero_byte, truncated = sorted(p.stem for p in (bad_data / 'img' / 'train').glob('*.jpg'))[:2]
    assert kinds['unreadable_image'] == (
        f'unreadable_image (2 files): img/train/{zero_byte}.jpg, img/train/{truncated}.jpg '
        '[zero-byte file] -> re-export the image or remove the pair')
    assert 'labels/train/orphan.png' in kinds['mask_without_image']
    assert '7 (16 px) outside 0..2' in kinds['out_of_range_values']
    assert 'image 64x64, mask 32x32' in kinds['size_mismatch']
    assert 'rgb_to_masks.py' in kinds['not_single_channel']
    assert lines[-1].strip().startswith('fix the files (python eda/run_eda.py --data-root')
    assert '--skip-invalid to train on the valid pairs (train 11, val 7)' in lines[-1]


def test_skip_invalid_excludes_exactly_the_bad_pairs(bad_data: Path) -> None:
    from mmseg.registry import DATASETS
    cfg = cfg_for(bad_data)
    report = validate_dataset(cfg, skip_invalid=True)
    trains = sorted(p.stem for p in (bad_data / 'img' / 'train').glob('*.jpg'))
    vals = sorted(p.stem for p in (bad_data / 'img' / 'val').glob('*.jpg'))
    assert report.dropped == {
        'train_dataloader': sorted(trains[i] for i in EXPECTED_BAD['train']),
        'val_dataloader': [vals[0]]}
    assert cfg.train_dataloader.dataset.exclude == report.dropped['train_dataloader']
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=[]))
    val = DATASETS.build(dict(cfg.val_dataloader.dataset, pipeline=[]))
    assert len(train) == 11 and len(val) == 7
    loaded = {Path(train.get_data_info(i)['img_path']).stem for i in range(len(train))}
    assert not loaded & set(report.dropped['train_dataloader'])
    # warnings, not errors: the palette mask and the image shared by train and val
    assert any(w.startswith('not_single_channel') and 'palette' in w for w in report.warnings)
    assert any(w.startswith('duplicate_across_splits') for w in report.warnings)



def test_eda_usable_pairs_are_the_pairs_training_keeps(bad_data: Path) -> None:
    """One rule: a mask with a value outside 0..K-1 (or any other refused pair) is not usable
    for EDA's statistics either."""
    report = validate_dataset(cfg_for(bad_data), skip_invalid=True, verbose=False)
    scan = scan_dataset(bad_data, report.scans[0].classes, splits=('train', 'val'),
                        progress=False)
    for check in report.checks:
        assert scan.splits[check.split].usable_pairs == check.valid, check.split
        used = {r.stem for r in scan.splits[check.split].records}
        assert not used & set(report.dropped[check.loader])
    assert scan.splits['train'].out_of_range_pixels == 16  # still counted, not used

def test_ignore_index_is_respected(bad_data: Path, tmp_path: Path) -> None:
    root = tmp_path / 'd'
    shutil.copytree(bad_data, root)
    stem = sorted(p.stem for p in (root / 'img' / 'train').glob('*.jpg'))[5]  # has 255 pixels

    def out_of_range(report) -> set[str]:
        return {Path(p.file).stem for p in report.problems if p.kind == 'out_of_range_values'}

    report = validate_dataset(cfg_for(root), skip_invalid=True)  # ignore_index=255: fine
    assert stem not in out_of_range(report) and stem not in report.dropped['train_dataloader']
    cfg = cfg_for(root, **{'train_dataloader.dataset.ignore_index': 254})
    report = validate_dataset(cfg, skip_invalid=True)
    assert stem in out_of_range(report) and stem in report.dropped['train_dataloader']


def test_empty_split_stops_even_with_skip_invalid(tiny_data: Path, tmp_path: Path) -> None:
    root = tmp_path / 'd'
    shutil.copytree(tiny_data, root)
    for p in (root / 'img' / 'val').iterdir():
        p.unlink()
    with pytest.raises(UserError, match=r'the val split has no image files -> put image/mask'):
        validate_dataset(cfg_for(root), skip_invalid=True)
    root2 = tmp_path / 'd2'
    shutil.copytree(tiny_data, root2)
    for p in (root2 / 'img' / 'val').iterdir():
        p.write_bytes(b'')
    with pytest.raises(UserError, match=r'the val split has no valid pairs \(all 8 invalid\)'):
        validate_dataset(cfg_for(root2), skip_invalid=True)


def test_other_folder_layout_and_suffix(tmp_path: Path) -> None:
    """data_prefix and img_suffix come from the config, not a fixed layout."""
    root = tmp_path / 'd'
    for split, n in (('training', 6), ('validation', 3)):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / 'images' / split / f'{i}.png'), np.zeros((16, 16, 3), np.uint8))
            cv2.imwrite(str(root / 'annotations' / split / f'{i}.png'),
                        np.eye(16, dtype=np.uint8))
    cv2.imwrite(str(root / 'annotations' / 'training' / '0.png'), np.zeros((8, 8), np.uint8))
    opts = {}
    for key, split in (('train_dataloader', 'training'), ('val_dataloader', 'validation')):
        opts[f'{key}.dataset.data_prefix'] = dict(img_path=f'images/{split}',
                                                  seg_map_path=f'annotations/{split}')
        opts[f'{key}.dataset.img_suffix'] = '.png'
    with pytest.raises(UserError, match='size_mismatch .*annotations/training/0.png'):
        validate_dataset(cfg_for(root, **opts))


def test_validation_of_hundreds_of_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / 'd'
    for split, n in (('train', 240), ('val', 80)):
        (root / 'img' / split).mkdir(parents=True)
        (root / 'labels' / split).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / 'img' / split / f'{i}.jpg'),
                        rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
            m = np.zeros((128, 128), np.uint8)
            m[20:60, 20:60] = 1 + i % 2
            cv2.imwrite(str(root / 'labels' / split / f'{i}.png'), m)
    start = time.perf_counter()
    report = validate_dataset(cfg_for(root))
    print(f'validating 320 pairs took {time.perf_counter() - start:.1f} s')  # not asserted
    assert report.ok and not report.problems
    assert {c.split: c.valid for c in report.checks} == {'train': 240, 'val': 80}


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'tools/train.py', TINY_CFG, *args], cwd=REPO,
                          env=cli_env(), capture_output=True, text=True, timeout=600)


def test_cli_stops_before_building_the_model(bad_data: Path, tmp_path: Path) -> None:
    work = tmp_path / 'wd'
    proc = run_train('--data-root', str(bad_data), '--work-dir', str(work))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'dataset check failed' in errors[0]
    assert proc.stderr.count('\n  ') >= 7  # one line per kind + the advice
    assert not work.exists(), 'nothing is created when the data check fails'
    assert 'Epoch(train)' not in proc.stdout


@pytest.mark.slow
def test_cli_skip_invalid_trains_on_the_valid_pairs(bad_data: Path, tmp_path: Path) -> None:
    work = tmp_path / 'wd'
    proc = run_train('--data-root', str(bad_data), '--work-dir', str(work), '--epochs', '1',
                     '--skip-invalid')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ('warning: --skip-invalid: dropped 6 of 24 image/mask pairs (train 5, val 1); '
            'training on train 11, val 7') in proc.stderr
    info = json.loads((work / 'run_info.json').read_text())
    assert info['epochs'] == 1 and len(info['dropped_pairs']['train_dataloader']) == 5
    log = next(work.glob('*/*.log')).read_text()
    assert 'Epoch(train) [1][2/2]' in log  # 11 pairs / batch 4: 2 full batches, 3 dropped
