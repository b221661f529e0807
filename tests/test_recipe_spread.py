"""Recipe tables over several runs: --seeds (mean, std, worst over seeds), --folds (K-fold
cross-validation over train+val, stratified by image class), --ensemble (the configs scored
together run by run), on tiny data with the real runner."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from smallseg.apis.folds import assign_folds, fold_options, image_strata, stratum_of, write_folds
from smallseg.apis.recipes import compare_recipes, recipes_markdown, spread
from smallseg.utils.errors import UserError

from conftest import REPO, TINY_CFG, cli_env, tiny_options

STATS = ('mean', 'std', 'worst')
SCORES = ('val_mdice', 'val_mdice_fg', 'val_img_class_acc')


def short_runs() -> dict:
    """Two iterations of 8 images an epoch, 8 val images."""
    return {**tiny_options(), 'train_dataloader.dataset.indices': 8}


@pytest.mark.slow
def test_seeded_table_aggregates_two_seeds(tiny_data: Path, tmp_path: Path) -> None:
    work, out = tmp_path / 'w', tmp_path / 'table'
    options = [f'{k}={v}'.replace(' ', '') for k, v in short_runs().items()]
    proc = subprocess.run(
        [sys.executable, 'tools/compare_recipes.py', TINY_CFG, '--data-root', str(tiny_data),
         '--work-dir', str(work), '--seeds', '2', '--seed', '11', '--epochs', '2',
         '--out', str(out), '--cfg-options', *options, '--clearml', 'off'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = json.loads(out.with_suffix('.json').read_text())
    runs = row['runs']
    assert [r['seed'] for r in runs] == [11, 12] and row['seeds'] == [11, 12]
    assert row['runs_n'] == 2 and row['folds'] is None
    for run in runs:  # each run in its own work dir, trained with its seed, 2 epochs
        assert Path(run['work_dir']) == work / f"tiny_unet_s{run['seed']}"
        info = json.loads((Path(run['work_dir']) / 'run_info.json').read_text())
        assert info['seed'] == run['seed'] and info['epochs'] == run['epochs'] == 2
        assert run['best_epoch'] == info['best_epoch'] in (1, 2)
        assert run['wall_time_s'] == info['wall_time_s'] > 0
        assert run['val_mdice'] == pytest.approx(info['best_val_mdice'], abs=1e-4)
        assert 0 <= run['val_img_class_acc'] <= 1 and info['mean_step_s'] > 0
    for key in SCORES:  # the aggregates are those of the per-run values
        values = [r[key] for r in runs]
        assert row[f'{key}_mean'] == pytest.approx(statistics.mean(values), abs=1e-4)
        assert row[f'{key}_std'] == pytest.approx(statistics.stdev(values), abs=1e-4)
        assert row[f'{key}_worst'] == min(values)
    epochs = [r['best_epoch'] for r in runs]
    assert (row['best_epoch_min'], row['best_epoch_max']) == (min(epochs), max(epochs))
    table = out.with_suffix('.md').read_text()
    header, _, line = table.splitlines()
    cells = dict(zip([c.strip() for c in header.strip('|').split('|')],
                     [c.strip().strip('*') for c in line.strip('|').split('|')]))
    assert cells['runs'] == '2' and cells['epochs'] == '2'
    for key, label in (('val_mdice', 'val mDice'), ('val_img_class_acc', 'image class right')):
        for stat in STATS:
            assert cells[f'{label} {stat}'] == f"{row[f'{key}_{stat}']:.4f}"
    assert cells['best epoch'] == (str(epochs[0]) if len(set(epochs)) == 1
                                   else f'{min(epochs)}-{max(epochs)}')
    assert table in proc.stdout
    # again with --reuse: both runs are taken as they are, nothing trains
    again = compare_recipes([TINY_CFG], tiny_data, work, seeds=2, seed=11, reuse=True)
    assert again[0]['runs'] == runs


def test_spread_and_option_checks(tiny_data: Path, tmp_path: Path) -> None:
    assert spread([0.7, None, 0.8, 0.9]) == dict(mean=0.8, std=0.1, worst=0.7)
    assert spread([0.75]) == dict(mean=0.75, std=None, worst=0.75)
    assert spread([None]) == dict(mean=None, std=None, worst=None)
    with pytest.raises(UserError, match='give --seeds 3 or leave --seeds out'):
        compare_recipes([TINY_CFG], tiny_data, tmp_path, seeds=2, folds=3)
    with pytest.raises(UserError, match='--seeds must be 1 or more'):
        compare_recipes([TINY_CFG], tiny_data, tmp_path, seeds=0)
    with pytest.raises(UserError, match='--folds must be 2 or more'):
        assign_folds({'train/a': 'none', 'train/b': 'none'}, 1, 0)
    with pytest.raises(UserError, match='--ensemble scores the configs together'):
        compare_recipes([TINY_CFG], tiny_data, tmp_path, seeds=2, ensemble=True)


def test_strata() -> None:
    mask = np.zeros((4, 4), np.uint8)
    assert stratum_of(mask) == 'none'
    mask[0, 0] = 255  # ignored pixels are no class
    assert stratum_of(mask) == 'none'
    mask[1, 1] = 2
    assert stratum_of(mask) == 'class 2'
    mask[2, 2] = 1
    assert stratum_of(mask) == 'several'


def _names(path: str) -> list[str]:
    return Path(path).read_text().split()


def test_folds_are_disjoint_stratified_and_seeded(tiny_data: Path, tmp_path: Path) -> None:
    strata = image_strata(tiny_data)
    everything = {f'{split}/{p.stem}' for split in ('train', 'val')
                  for p in (tiny_data / 'img' / split).glob('*.jpg')}
    assert set(strata) == everything and len(everything) == 24  # 16 train + 8 val, no test
    for name, stratum in strata.items():  # each the class of its mask
        split, stem = name.split('/')
        mask = np.asarray(Image.open(tiny_data / 'labels' / split / f'{stem}.png'))
        assert stratum == stratum_of(mask)
    assert len(set(strata.values())) >= 2  # round and angular at least
    folds = write_folds(tiny_data, 2, seed=5, out_dir=tmp_path / 'k2')
    vals = [set(_names(f['val'])) for f in folds]
    assert vals[0].isdisjoint(vals[1]) and vals[0] | vals[1] == everything
    for fold, val in zip(folds, vals):  # trains on the rest, nothing from the test split
        assert set(_names(fold['train'])) == everything - val
        assert abs(len(val) - len(everything) / 2) <= 1
    for stratum, count in Counter(strata.values()).items():
        in_folds = [sum(strata[n] == stratum for n in val) for val in vals]
        assert abs(in_folds[0] - in_folds[1]) <= 1 and sum(in_folds) == count
    record = json.loads((tmp_path / 'k2' / 'folds.json').read_text())
    assert record['seed'] == 5 and record['strata'] == strata
    # the same seed, the same folds; another seed, others
    same = write_folds(tiny_data, 2, seed=5, out_dir=tmp_path / 'again')
    assert [set(_names(f['val'])) for f in same] == vals
    other = [assign_folds(strata, 2, seed) for seed in range(6, 10)]
    assert any(o != record['folds'] for o in other)
    # the stock dataset reads a fold's list from both split folders
    from mmseg.registry import DATASETS
    ds_cfg = Config.fromfile(TINY_CFG).val_dataloader.dataset
    ds_cfg.update(data_root=str(tiny_data), pipeline=[],
                  **{k.split('.')[-1]: v for k, v in fold_options(folds[0]).items()
                     if k.startswith('val_')})
    dataset = DATASETS.build(ds_cfg)
    paths = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert len(paths) == len(vals[0])
    assert {Path(p['img_path']).parent.name for p in paths} == {'train', 'val'}
    assert all(Path(p['seg_map_path']).is_file() and Path(p['img_path']).is_file()
               for p in paths)


@pytest.mark.slow
def test_two_folds_train_on_their_splits(tiny_data: Path, tmp_path: Path) -> None:
    options = {**tiny_options(), 'train_dataloader.dataset.indices': 4,
               'val_dataloader.dataset.indices': 4}
    [row] = compare_recipes([TINY_CFG], tiny_data, tmp_path, epochs=1, cfg_options=options,
                            folds=2, seed=3)
    assert row['folds'] == 2 and row['fold_seed'] == 3 and row['runs_n'] == 2
    assert [(r['fold'], r['seed']) for r in row['runs']] == [(0, 3), (1, 4)]
    split_dir = tmp_path / 'folds_k2_s3'
    assert json.loads((split_dir / 'folds.json').read_text())['seed'] == 3
    for run in row['runs']:
        assert Path(run['work_dir']).name == f"tiny_unet_f{run['fold']}of2_s{run['seed']}"
        info = json.loads((Path(run['work_dir']) / 'run_info.json').read_text())
        saved = Config.fromstring(torch.load(info['best_checkpoint'], map_location='cpu',
                                             weights_only=False)['meta']['cfg'], '.py')
        fold = split_dir / f"fold{run['fold']}"
        assert saved.train_dataloader.dataset.ann_file == str(fold / 'train.txt')
        assert saved.val_dataloader.dataset.ann_file == str(fold / 'val.txt')
        assert saved.val_dataloader.dataset.data_prefix.img_path == 'img'
        assert 0 <= run['val_mdice'] <= 1
    assert row['val_mdice_worst'] == min(r['val_mdice'] for r in row['runs'])


@pytest.mark.slow
def test_ensemble_row_scores_each_fold_with_that_folds_members(tiny_data: Path,
                                                               tmp_path: Path) -> None:
    other = tmp_path / 'tiny_unet_lr.py'  # the same model trained at another learning rate
    other.write_text(f"_base_ = ['{REPO / TINY_CFG}']\n"
                     'optim_wrapper = dict(optimizer=dict(lr=3e-3))\n')
    options = {**tiny_options(), 'train_dataloader.dataset.indices': 4}
    work = tmp_path / 'w'
    rows = compare_recipes([TINY_CFG, str(other)], tiny_data, work, epochs=1,
                           cfg_options=options, folds=2, seed=3, ensemble=True)
    members, ensemble = rows[:2], rows[2]
    assert ensemble['model'] == 'ensemble' and ensemble['recipe'].startswith(
        'tiny_unet + tiny_unet_lr + ')  # the members, then the options every run had
    assert ensemble['runs_n'] == 2 and ensemble['folds'] == 2 and ensemble['fold_seed'] == 3
    for i, run in enumerate(ensemble['runs']):
        assert (run['fold'], run['seed'], run['member_seeds']) == (i, 3 + i, [3 + i, 3 + i])
        # the members are the two configs' runs on this fold, with the scores they logged
        assert [Path(c).parent.name for c in run['checkpoints']] == [
            f'tiny_unet_f{i}of2_s{3 + i}', f'tiny_unet_lr_f{i}of2_s{3 + i}']
        assert run['member_val_mdice'] == [m['runs'][i]['val_mdice'] for m in members]
        assert run['gain'] == pytest.approx(run['val_mdice'] - max(run['member_val_mdice']),
                                            abs=1e-4)
        # scored on this fold's val images, all of them
        scored = [line.split(',')[0] for line in
                  (Path(run['work_dir']) / 'val_per_image.csv').read_text().splitlines()[1:]]
        fold_val = (work / 'folds_k2_s3' / f'fold{i}' / 'val.txt').read_text().split()
        assert sorted(scored) == sorted(f'{Path(name).name}.jpg' for name in fold_val)
        assert 0 <= run['val_mdice'] <= 1 and 0 <= run['val_img_class_acc'] <= 1
    assert ensemble['val_mdice_worst'] == min(r['val_mdice'] for r in ensemble['runs'])
    assert ensemble['gain_worst'] == min(r['gain'] for r in ensemble['runs'])
    table = recipes_markdown(rows)
    assert '| ensemble | tiny_unet + tiny_unet_lr' in table
    assert 'against its better member, val mDice run by run: ' in table
    # again with reuse: nothing trains and the ensemble's scores are read back
    again = compare_recipes([TINY_CFG, str(other)], tiny_data, work, epochs=1,
                            cfg_options=options, folds=2, seed=3, ensemble=True, reuse=True)
    assert again[2]['runs'] == ensemble['runs']
