"""The README's main job end to end (one model, one epoch, tiny data): every deliverable."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smallseg.apis.pipeline import run_main_job

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
    # aside, not resumed, and the model trains anew
    run_main_job([config], data_root=str(tiny_data), epochs=2, pretrained=None,
                 cfg_options=tiny_options(), analyse=False)
    info = json.loads(Path('work_dirs/unet_r34/run_info.json').read_text())
    assert info['epochs'] == 2 and 'resumed_from' not in info
    kept = list(Path('work_dirs').glob('unet_r34.previous_*'))
    assert len(kept) == 1 and (kept[0] / 'best_mDice_epoch_1.pth').stat().st_mtime == mtime
    assert Path((kept[0] / 'last_checkpoint').read_text()).parent == kept[0].resolve()
