"""Error-analysis pictures, training curves, comparison and tools/test.py outputs on one tiny
real training run (U-Net R34, 32x32 images, 2 epochs, module-scoped)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from smallseg.analysis import plot_training_curves, read_curves, run_error_analysis
from smallseg.analysis.compare import comparison_markdown, write_comparison
from smallseg.apis.results import read_results
from smallseg.apis.test import (build_test_cfg, class_table, evaluate, output_paths,
                                record_results, write_outputs)
from smallseg.apis.train import build_train_cfg, train
from smallseg.synthetic import generate_dataset

from conftest import REPO, load_script

torch.set_num_threads(1)
CONFIG = str(REPO / 'configs' / 'unet_r34.py')
SIZE = 32
# train and test at 32x32 (the configs resize to 256): the Resize steps of the pipelines
OPTIONS = {'train_dataloader.batch_size': 4, 'model.data_preprocessor.size': (SIZE, SIZE),
           'train_dataloader.dataset.pipeline.2.scale': (SIZE, SIZE),
           'val_dataloader.dataset.pipeline.1.scale': (SIZE, SIZE),
           'test_dataloader.dataset.pipeline.1.scale': (SIZE, SIZE),
           'default_hooks.logger.interval': 1}
PICTURES = ['best', 'worst'] + [f'{k}_{i}' for k in ('correct', 'error') for i in (1, 2, 3)]


@pytest.fixture(scope='module')
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp('analysis')
    data = tmp / 'data'
    generate_dataset(data, seed=1, counts={'train': 8, 'val': 4, 'test': 8}, size=SIZE,
                     progress=False, workers=1)
    work_dir = tmp / 'work'
    cfg, info = build_train_cfg(CONFIG, work_dir=str(work_dir), data_root=str(data),
                                amp='off', pretrained=None, epochs=2, cfg_options=OPTIONS)
    assert all(cfg[f'{k}_dataloader'].dataset.pipeline[i].type == 'Resize'
               for k, i in (('train', 2), ('val', 1), ('test', 1))), 'OPTIONS: fix the indices'
    info = train(cfg, info)
    ckpt = Path(info['best_checkpoint'])
    out = output_paths(tmp / 'eval', 'unet_r34', 'test')
    test_cfg = build_test_cfg(CONFIG, ckpt, data_root=str(data), work_dir=str(work_dir),
                              amp='off', cfg_options=OPTIONS, csv_path=out['per_image'])
    metrics = evaluate(test_cfg)
    write_outputs(out, metrics, title='unet_r34 test')
    results = tmp / 'results.json'
    record_results(results, 'unet_r34', 'test', metrics, CONFIG, ckpt)
    return dict(tmp=tmp, data=data, work_dir=work_dir, ckpt=ckpt, metrics=metrics, out=out,
                results=results)


def test_test_outputs_and_results_entry(run):
    m = run['metrics']
    assert 0 <= m['mDice'] <= 1 and 'Dice.angular' in m and 'IoU.round' in m
    assert np.array(m['confusion_matrix']).shape == (3, 3)
    assert json.loads(run['out']['metrics'].read_text())['mDice'] == m['mDice']
    rows = list(csv.DictReader(run['out']['per_image'].open()))
    assert len(rows) == 8 and {'image', 'Dice.round', 'mDice'} <= set(rows[0])
    assert Image.open(run['out']['confusion']).size[0] > 300
    table = class_table(m)
    assert 'angular' in table and 'mean fg' in table
    entry = read_results(run['results'])['models']['unet_r34']
    for key in ('val_mdice', 'test_mdice', 'test_mdice_fg', 'test_mdice_per_image',
                'test_dice_per_class', 'test_iou_per_class', 'val_dice_per_class', 'epochs',
                'best_epoch', 'wall_time_s', 'device', 'config', 'checkpoint'):
        assert entry.get(key) is not None, key
    assert entry['epochs'] == 2 and list(entry['test_dice_per_class']) == [
        'background', 'round', 'angular']
    assert entry['test_dice_per_class']['round'] == m['Dice.round']


def test_training_curves(run):
    curves = read_curves(run['work_dir'])
    assert curves['epochs'] == [1, 2] and curves['val_epochs'] == [1, 2]
    # the last LR of each epoch: warmed up to 1e-3 in epoch 1, decayed (poly) in epoch 2
    assert len(curves['loss']) == 2 and curves['lr'][0] == pytest.approx(1e-3)
    assert curves['lr'][1] < curves['lr'][0]
    assert {'mDice', 'Dice.background', 'Dice.round', 'Dice.angular'} <= set(curves['val'])
    assert all(0 <= v <= 1 for v in curves['val']['mDice'])
    path = plot_training_curves(run['work_dir'], title='unet_r34')
    assert path == run['work_dir'] / 'training_curves.png'
    assert Image.open(path).size[0] > 1000


def test_error_analysis_pictures_and_summary(run):
    out = run['tmp'] / 'viz'
    summary = run_error_analysis(CONFIG, run['ckpt'], out, data_root=str(run['data']),
                                 cfg_options=OPTIONS)
    for name in PICTURES:
        assert Image.open(out / f'{name}.png').size[0] > 800, name
    assert list(summary['pictures']) == PICTURES
    assert len({p['image'] for p in summary['pictures'].values()}) == 8  # no image twice
    scores = {k: p['mdice'] for k, p in summary['pictures'].items()}
    assert scores['best'] == max(scores.values()) and scores['worst'] == min(scores.values())
    # the pictures' predictions agree with the evaluator run through the runner
    for cls in ('background', 'round', 'angular'):
        dice = summary['classes'][cls]['dice']
        assert dice == pytest.approx(run['metrics'][f'Dice.{cls}'], abs=1e-3), cls
    worst = summary['worst_class']
    assert worst in ('round', 'angular')
    w = summary['classes'][worst]
    assert w['images_missed'] == len(w['missed_images']) <= w['images_with_class']
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['worst_class'] == worst
    text = (out / 'summary.txt').read_text()
    assert f'Worst class: {worst}' in text and 'best.png' in text
    assert (out / 'confusion_matrix.png').is_file() and (out / 'per_image.csv').is_file()


def test_compare_tables_and_cards(run):
    results = run['tmp'] / 'results_two.json'
    data = read_results(run['results'])
    other = dict(data['models']['unet_r34'], test_mdice=0.99, wall_time_s=1e6,
                 config=str(REPO / 'configs' / 'deeplabv3plus_r50_seed.py'))
    data['models']['deeplabv3plus_r50'] = other
    results.write_text(json.dumps(data))
    md = comparison_markdown(read_results(results))
    assert '| model | val mDice | test mDice' in md and '**0.9900**' in md
    paths = write_comparison(results, run['tmp'] / 'cmp')
    detailed = json.loads(paths['detailed_comparison'].read_text())
    assert detailed['ranking'][0] == 'deeplabv3plus_r50'
    assert detailed['best_per_metric']['test_mdice'] == ['deeplabv3plus_r50']
    assert detailed['best_per_metric']['wall_time_s'] == ['unet_r34']
    card = json.loads(paths['deeplabv3plus_r50_best'].read_text())
    assert card['architecture'] == 'DeepLabV3+' and card['encoder'] == 'ResNet-50'
    assert card['loss']['class_weight'] == [0.1, 1.0, 1.0]
    assert card['optimizer']['type'] == 'Adam' and card['schedule']['max_epochs'] == 30
    assert [a['type'] for a in card['augmentations']] == ['RandomFlip', 'RandomRotate']
    assert card['results']['test_mdice'] == 0.99 and card['date']
    unet = json.loads(paths['unet_r34_best'].read_text())
    assert unet['architecture'] == 'U-Net' and unet['optimizer']['weight_decay'] == 0.05
    # the default recipe: two losses, class_weight='auto' shown as the run's resolved weights
    assert [x['type'] for x in unet['loss']] == ['IgnoreSafeCrossEntropyLoss', 'ClassDiceLoss']
    weights = unet['loss'][0]['class_weight']
    assert len(weights) == 3 and weights[0] < weights[1]



def test_analyze_and_compare_tools(run, monkeypatch, capsys):
    out = run['tmp'] / 'viz_tool'
    monkeypatch.setattr(sys, 'argv', [
        'analyze.py', CONFIG, str(run['ckpt']), '--data-root', str(run['data']), '--out',
        str(out), '--cfg-options', 'model.data_preprocessor.size=(32,32)',
        'test_dataloader.dataset.pipeline.1.scale=(32,32)'])
    load_script('tools/analyze.py').main()
    printed = capsys.readouterr().out
    assert 'Worst class' in printed and 'training curves' in printed
    assert all((out / f'{n}.png').is_file() for n in PICTURES)
    proc = subprocess.run([sys.executable, 'tools/compare.py', '--results', str(run['results']),
                           '--out-dir', str(run['tmp'] / 'cmp_tool')], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (run['tmp'] / 'cmp_tool' / 'comparison.md').is_file()
    assert (run['tmp'] / 'cmp_tool' / 'unet_r34_best.json').is_file()
