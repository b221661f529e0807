"""Ensembles: two tiny trained models (64x64 and 48x48 inputs) through tools/test.py and
tools/infer.py, the mean of the members' probabilities, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from smallseg.apis import UserError
from smallseg.apis.pipeline import find_best_checkpoint
from smallseg.apis.test import build_ensemble_test_cfg, build_test_cfg
from smallseg.apis.train import build_train_cfg, train
from smallseg.models import EnsembleSegmentor, apply_object_prior

from conftest import REPO, TINY_CFG, load_script

pytestmark = pytest.mark.slow
torch.set_num_threads(2)
OPTIONS = {'train_dataloader.batch_size': 4, 'val_dataloader.batch_size': 8,
           'test_dataloader.batch_size': 8, 'default_hooks.logger.interval': 1}
SMALLER = """_base_ = ['{base}']
img_size = (48, 48)
model = dict(data_preprocessor=dict(size=img_size))
_load = [dict(type='LoadImageFromFile')]
train_pipeline = _load + [dict(type='LoadAnnotations'),
                          dict(type='Resize', scale=img_size, keep_ratio=False),
                          dict(type='PackSegInputs')]
test_pipeline = _load + [dict(type='Resize', scale=img_size, keep_ratio=False),
                         dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


@pytest.fixture(scope='module')
def members(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """Two models trained one epoch: the tiny U-Net at 64x64 and the same at 48x48."""
    root = tmp_path_factory.mktemp('ensemble')
    smaller = root / 'tiny_unet_48.py'
    smaller.write_text(SMALLER.format(base=REPO / TINY_CFG))
    pairs = []
    for config in (TINY_CFG, str(smaller)):
        work_dir = root / Path(config).stem
        cfg, info = build_train_cfg(config, work_dir=str(work_dir), data_root=str(tiny_data),
                                    epochs=1, pretrained=None, cfg_options=OPTIONS, seed=0)
        train(cfg, info)
        pairs.append((config, str(find_best_checkpoint(work_dir))))
    return pairs


def _run_tool(tool: str, args: list, monkeypatch: pytest.MonkeyPatch) -> int:
    """``tools/<tool>.py ARGS`` in this process; its exit code (0 when it returns)."""
    monkeypatch.setattr('sys.argv', [tool, *map(str, args)])
    try:
        load_script(f'tools/{tool}.py').main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _one_error_line(capsys: pytest.CaptureFixture, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith('error: '), err
    return err[0]


def test_test_py_records_the_ensemble(members, tiny_data, tmp_path, monkeypatch):
    results = tmp_path / 'results.json'
    args = [p for pair in members for p in pair]
    code = _run_tool('test', [*args, '--split', 'val', '--data-root', tiny_data,
                              '--work-dir', tmp_path / 'w', '--results', results,
                              '--out', tmp_path / 'out'], monkeypatch)
    assert code == 0
    data = json.loads(results.read_text())
    assert data['models'] == {} and data['best_model'] is None  # no trained run recorded
    entry = data['ensembles']['ensemble']
    assert 0.0 <= entry['val_mdice'] <= 1.0 and entry['val_miou'] is not None
    assert set(entry['val_dice_per_class']) == {'background', 'round', 'angular'}
    assert entry['members'] == [dict(config=c, checkpoint=k) for c, k in members]
    rows = (tmp_path / 'out' / 'ensemble_val_per_image.csv').read_text().splitlines()
    assert len(rows) == 1 + 8  # header + the 8 val images


def _first_image(cfg) -> dict:
    """Image 0 of a test config's dataset through its own pipeline, as one batch."""
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return pseudo_collate([dataset[0]])


def _own_probabilities(config: str, checkpoint: str, tiny_data: Path) -> torch.Tensor:
    """A member alone, as tools/test.py runs it: its pipeline, preprocessor, prediction."""
    cfg = build_test_cfg(config, checkpoint, split='val', data_root=str(tiny_data),
                         work_dir=str(tiny_data.parent / 'unused'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    with torch.no_grad():
        sample = model.eval().test_step(_first_image(cfg))[0]
    return sample.seg_logits.data.float().softmax(dim=0)


def test_probabilities_are_the_mean_of_the_members(members, tiny_data):
    cfg = build_ensemble_test_cfg(members, split='val', data_root=str(tiny_data),
                                  work_dir=str(tiny_data.parent / 'unused'))
    # the members' test pipelines differ (64 vs 48): each resizes the original image itself
    assert all(t['type'] != 'Resize' for t in cfg.test_dataloader.dataset.pipeline)
    own = [_own_probabilities(c, k, tiny_data) for c, k in members]
    assert not torch.allclose(own[0], own[1], atol=1e-3)  # two different opinions
    batch = _first_image(cfg)

    def ensemble_of(weights=None) -> tuple[torch.Tensor, torch.Tensor]:
        model = MODELS.build(dict(cfg.model, weights=weights)).eval()
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        return sample.seg_logits.data.exp(), sample.pred_sem_seg.data[0]

    only_first, _ = ensemble_of([1, 0])  # the 64x64 member gets its own input: exact
    torch.testing.assert_close(only_first, own[0], atol=1e-5, rtol=1e-5)
    # the 48x48 member's input is resized by torch, not by the pipeline's cv2: close, far
    # closer than the two members are to each other (one epoch: nearly uniform outputs)
    spread = float((own[0] - own[1]).abs().max())
    only_second, _ = ensemble_of([0, 1])
    assert float((only_second - own[1]).abs().max()) < spread / 5
    probs, pred = ensemble_of()
    assert probs.shape == (3, 64, 64)
    assert float((probs - (own[0] + own[1]) / 2).abs().max()) < spread / 5
    torch.testing.assert_close(probs.sum(0), torch.ones(64, 64), atol=1e-4, rtol=0)
    model = MODELS.build(cfg.model)
    one_class, largest = model.one_class, model.largest_object
    assert torch.equal(pred, apply_object_prior(probs, probs.argmax(0), one_class, largest))


def test_infer_py_writes_the_ensemble_masks(members, tiny_data, tmp_path, monkeypatch):
    images = tmp_path / 'images'
    images.mkdir()
    for src in sorted((tiny_data / 'img' / 'test').iterdir())[:2]:
        (images / src.name).write_bytes(src.read_bytes())
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)).save(images / 'odd.png')
    args = [p for pair in members for p in pair]
    code = _run_tool('infer', [*args, images, '--out', tmp_path / 'out', '--no-progress',
                               '--device', 'cpu'], monkeypatch)
    assert code == 0
    masks = sorted((tmp_path / 'out' / 'masks').glob('*.png'))
    assert len(masks) == 3
    for mask in masks:
        data = np.asarray(Image.open(mask))
        assert data.dtype == np.uint8 and data.max() < 3
        assert data.shape == ((40, 70) if mask.stem == 'odd' else (64, 64))
    assert len((tmp_path / 'out' / 'predictions.csv').read_text().splitlines()) == 4


def test_an_odd_count_is_one_error_line(members, tiny_data, tmp_path, monkeypatch, capsys):
    (config, ckpt), (other, _) = members
    code = _run_tool('test', [config, ckpt, other, '--results', tmp_path / 'r.json'],
                     monkeypatch)
    line = _one_error_line(capsys, code)
    assert 'CONFIG CHECKPOINT pairs' in line and Path(other).name in line
    code = _run_tool('infer', [config, ckpt, other, tmp_path, '--out', tmp_path / 'o'],
                     monkeypatch)
    assert Path(other).name in _one_error_line(capsys, code)
    code = _run_tool('test', [config, ckpt, other, tmp_path / 'missing.pth', '--data-root',
                              tiny_data, '--work-dir', tmp_path / 'w', '--results',
                              tmp_path / 'r.json'], monkeypatch)
    assert 'missing.pth not found' in _one_error_line(capsys, code)


def test_members_with_other_classes_are_one_error_line(members, tiny_data, tmp_path,
                                                       monkeypatch, capsys):
    two = tmp_path / 'tiny_unet_2cls.py'
    two.write_text(f"_base_ = ['{REPO / TINY_CFG}']\n"
                   "model = dict(decode_head=dict(num_classes=2))\n")
    from smallseg.apis.config import load_config
    from smallseg.apis.test import settle_auto
    cfg = load_config(two)
    settle_auto(cfg, None)
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'two.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': dict(classes=('background', 'lesion'))}}, ckpt)
    (config, first), _ = members
    image = sorted((tiny_data / 'img' / 'test').iterdir())[0]
    code = _run_tool('infer', [config, first, two, ckpt, image, '--out', tmp_path / 'o'],
                     monkeypatch)
    line = _one_error_line(capsys, code)
    assert 'different classes' in line and config in line and str(two) in line
    # built from modules: the component names the members whose class counts differ
    three = load_config(config)
    settle_auto(three, None)
    base = MODELS.build(three.model)
    with pytest.raises(UserError, match=r'different numbers of classes: a \(3\), b \(2\)'):
        EnsembleSegmentor([dict(model=base, name='a'), dict(model=model, name='b')])


def test_main_job_scores_the_ensemble_on_val_and_test(members, tiny_data, tmp_path):
    from smallseg.analysis import write_comparison
    from smallseg.apis.pipeline import evaluate_ensemble
    results = tmp_path / 'results.json'
    evaluate_ensemble(members[:1], str(results), str(tiny_data), str(tmp_path / 'w'))
    assert not results.exists()  # one model: skipped
    evaluate_ensemble(members, str(results), str(tiny_data), str(tmp_path / 'w'))
    entry = json.loads(results.read_text())['ensembles']['ensemble']
    assert entry['val_mdice'] is not None and entry['test_mdice'] is not None
    assert [m['checkpoint'] for m in entry['members']] == [k for _, k in members]
    table = (write_comparison(results, tmp_path / 'results')['comparison_md']).read_text()
    row = next(line for line in table.splitlines() if line.startswith('| ensemble'))
    val, test = (f"{entry[k]:.4f}" for k in ('val_mdice', 'test_mdice'))
    assert row.startswith(f'| ensemble (tiny_unet + tiny_unet_48) | {val} | {test} |'), row
