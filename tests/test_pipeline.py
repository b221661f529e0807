"""The README's main job end to end (one model, one epoch, tiny data): every deliverable."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smallseg.apis import pipeline
from smallseg.utils.errors import UserError
from smallseg.apis.pipeline import changed_settings, run_main_job
from smallseg.apis.train import build_train_cfg

from conftest import REPO, tiny_options

pytestmark = pytest.mark.slow


def test_main_job_writes_every_deliverable(tiny_data: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = str(REPO / 'configs' / 'unet_r34.py')
    data = run_main_job([config], data_root=str(tiny_data), epochs=1, pretrained=None,
                        cfg_options=tiny_options())
    entry = data['models']['unet_r34']
    assert entry['epochs'] == 1 and entry['best_epoch'] == 1
    assert entry['test_mdice'] is not None and entry['val_mdice'] is not None
    assert json.loads(Path('results.json').read_text()) == data
    assert Path('work_dirs/unet_r34/best_mDice_epoch_1.pth').is_file()
    assert Path('work_dirs/unet_r34/training_curves.png').is_file()
    viz = Path('supplementary/viz/unet_r34')
    for picture in ('best', 'worst', 'correct_1', 'error_1'):
        assert (viz / f'{picture}.png').is_file(), picture
    assert Path('results/detailed_comparison.json').is_file()
    assert 'unet_r34' in Path('results/comparison.md').read_text()

    # a second run finds the finished model and does not train again
    mtime = Path('work_dirs/unet_r34/best_mDice_epoch_1.pth').stat().st_mtime
    run_main_job([config], data_root=str(tiny_data), epochs=1, pretrained=None,
                 cfg_options=tiny_options(), analyse=False)
    assert Path('work_dirs/unet_r34/best_mDice_epoch_1.pth').stat().st_mtime == mtime

    # more epochs is another recipe (the LR decay ends elsewhere): the finished run is kept
    # aside, not resumed, and the model trains anew; the tables and pictures go beside the
    # results file
    before = Path('results/comparison.md').read_text()
    run_main_job([config], data_root=str(tiny_data), epochs=2, pretrained=None,
                 cfg_options=tiny_options(), results='other/results.json')
    info = json.loads(Path('work_dirs/unet_r34/run_info.json').read_text())
    assert info['epochs'] == 2 and 'resumed_from' not in info
    kept = list(Path('work_dirs').glob('unet_r34.previous_*'))
    assert len(kept) == 1 and (kept[0] / 'best_mDice_epoch_1.pth').stat().st_mtime == mtime
    assert Path((kept[0] / 'last_checkpoint').read_text()).parent == kept[0].resolve()
    assert 'unet_r34' in Path('other/results/comparison.md').read_text()
    assert Path('other/supplementary/viz/unet_r34/best.png').is_file()
    assert Path('results/comparison.md').read_text() == before

    # a seed is a setting too (a rerun with --seed trains anew)
    work_dir = Path('work_dirs/unet_r34')
    seeded, _ = build_train_cfg(config, work_dir=str(work_dir), data_root=str(tiny_data),
                                pretrained=None, epochs=2, cfg_options=tiny_options(), seed=5)
    assert changed_settings(work_dir, seeded) == ['randomness']

    # a time budget is a setting too; a run that ended inside its budget, with fewer epochs
    # than the config's, is finished, not resumed
    run_main_job([config], data_root=str(tiny_data), epochs=2, pretrained=None,
                 cfg_options=tiny_options(), analyse=False, time_budget=0.001)
    info_file = work_dir / 'run_info.json'
    info = json.loads(info_file.read_text())
    assert info['epochs'] == 1 and info['time_budget_min'] == 0.001
    assert len(list(Path('work_dirs').glob('unet_r34.previous_*'))) == 2
    run_main_job([config], data_root=str(tiny_data), epochs=2, pretrained=None,
                 cfg_options=tiny_options(), analyse=False, time_budget=0.001)
    assert json.loads(info_file.read_text()) == info

    # a work dir from before train_settings.json existed is resumed as it was
    (work_dir / 'train_settings.json').unlink()
    assert changed_settings(work_dir, seeded) == []


def test_set_aside_failure_is_one_clear_line(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    work_dir = tmp_path / 'unet_r34'
    (work_dir / 'keep').mkdir(parents=True)
    monkeypatch.setattr(pipeline.time, 'strftime', lambda fmt: 'T')
    (tmp_path / 'unet_r34.previous_T' / 'other').mkdir(parents=True)  # the name is taken
    with pytest.raises(UserError, match='could not be renamed to unet_r34.previous_T'):
        pipeline.set_aside(work_dir)
    assert (work_dir / 'keep').is_dir()
