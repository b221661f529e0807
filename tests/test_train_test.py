"""Both models train through mmengine's real Runner, test, resume and update results.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smallseg.apis.pipeline import find_best_checkpoint
from smallseg.apis.test import build_test_cfg, evaluate, record_results
from smallseg.apis.train import build_train_cfg, train

from conftest import tiny_options

pytestmark = pytest.mark.slow


def _train(config: str, data: Path, work_dir: Path, epochs: int, **kw) -> dict:
    cfg, info = build_train_cfg(config, work_dir=str(work_dir), data_root=str(data),
                                epochs=epochs, pretrained=None, cfg_options=tiny_options(), **kw)
    return train(cfg, info)


@pytest.fixture(scope='module')
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp('runs')
    return {name: _train(f'configs/{name}.py', tiny_data, root / name, epochs=1)
            for name in ('deeplabv3plus_r50', 'unet_r34')}


@pytest.mark.parametrize('name', ['deeplabv3plus_r50', 'unet_r34'])
def test_training_keeps_best_checkpoint_and_run_info(trained: dict, name: str) -> None:
    info = trained[name]
    work_dir = Path(info['work_dir'])
    assert info['epochs'] == 1 and info['best_epoch'] == 1
    assert Path(info['best_checkpoint']).name == 'best_mDice_epoch_1.pth'
    assert 0.0 <= info['best_val_mdice'] <= 1.0
    assert info['init']['init'] == 'scratch'
    saved = json.loads((work_dir / 'run_info.json').read_text())
    assert saved['best_val_mdice'] == info['best_val_mdice']
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'Epoch(val) [1]' in log and 'mDice' in log


def test_test_split_updates_results_json(trained: dict, tiny_data: Path, tmp_path: Path) -> None:
    results = tmp_path / 'results.json'
    for name, info in trained.items():
        ckpt = find_best_checkpoint(Path(info['work_dir']))
        cfg = build_test_cfg(f'configs/{name}.py', ckpt, split='test', data_root=str(tiny_data),
                             work_dir=str(tmp_path / name),
                             cfg_options={'img_size': (64, 64)})
        metrics = evaluate(cfg)
        assert 0.0 <= metrics['mDice'] <= 1.0
        record_results(results, name, 'test', metrics, f'configs/{name}.py', ckpt)
    data = json.loads(results.read_text())
    assert set(data['models']) == {'deeplabv3plus_r50', 'unet_r34'}
    for name, entry in data['models'].items():
        assert entry['val_mdice'] == trained[name]['best_val_mdice']
        assert entry['test_mdice'] is not None and entry['epochs'] == 1
    best = max(data['models'], key=lambda n: data['models'][n]['test_mdice'])
    assert data['best_model'] == best
    assert data['best_mdice'] == data['models'][best]['test_mdice']
    assert data['target'] == 0.75
    assert data['target_achieved'] is (data['best_mdice'] > 0.75)


def test_val_split_evaluates_val_images(trained: dict, tiny_data: Path, tmp_path: Path) -> None:
    info = trained['unet_r34']
    cfg = build_test_cfg('configs/unet_r34.py', info['best_checkpoint'], split='val',
                         data_root=str(tiny_data), work_dir=str(tmp_path),
                         cfg_options={'img_size': (64, 64)})
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'img/val'
    metrics = evaluate(cfg)
    # the same checkpoint on the same split gives the val score recorded during training
    assert metrics['mDice'] == pytest.approx(info['best_val_mdice'], abs=1e-3)


def test_resume_continues_from_last_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    work_dir = tmp_path / 'resume'
    _train('configs/unet_r34.py', tiny_data, work_dir, epochs=1)
    info = _train('configs/unet_r34.py', tiny_data, work_dir, epochs=2, resume=True)
    assert info['epochs'] == 2
    logs = sorted(work_dir.glob('*/*.log'))
    assert len(logs) == 2
    second = logs[-1].read_text()
    assert 'resumed epoch: 1' in second
    assert 'Epoch(train) [1]' not in second and 'Epoch(train) [2]' in second
    assert (work_dir / 'epoch_2.pth').is_file()
