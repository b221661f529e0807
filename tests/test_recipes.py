"""Training recipes: every config trains, 'auto' class weights, the Dice loss, the LR schedule
that follows --epochs, the time budget and the recipe comparison tool (tiny runs)."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from smallseg.apis.class_weights import resolve_class_weights
from smallseg.apis.config import load_config, set_data_root, set_max_epochs
from smallseg.utils.errors import UserError
from smallseg.apis.recipes import (_shown_path, compare_recipes, recipe_of, recipes_markdown,
                                   relabel_classes, with_options)
from smallseg.apis.train import build_train_cfg, train
from smallseg.eda.report import median_frequency_weights
from smallseg.models import ClassDiceLoss, IgnoreSafeCrossEntropyLoss

from conftest import REPO, cli_env, tiny_options

CONFIGS = ['configs/deeplabv3plus_r50_seed.py', 'configs/deeplabv3plus_r50.py',
           'configs/unet_r34_seed.py', 'configs/unet_r34.py']


def one_iteration() -> dict:
    """Tiny runs: one training iteration of 4 images, 4 val images."""
    return {**tiny_options(), 'train_dataloader.dataset.indices': 4,
            'val_dataloader.dataset.indices': 4}


@pytest.fixture(scope='module')
def recipe_runs(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each recipe config trained for one iteration into <root>/<config name>."""
    root = tmp_path_factory.mktemp('recipes')
    compare_recipes(CONFIGS, tiny_data, root, epochs=1, cfg_options=one_iteration())
    return root


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS)
def test_each_recipe_config_trains_one_iteration(recipe_runs: Path, config: str) -> None:
    info = json.loads((recipe_runs / Path(config).stem / 'run_info.json').read_text())
    assert info['epochs'] == 1 and Path(info['best_checkpoint']).is_file()
    assert 0.0 <= info['best_val_mdice'] <= 1.0
    saved = Config.fromstring(torch.load(info['best_checkpoint'], map_location='cpu',
                                         weights_only=False)['meta']['cfg'], '.py')
    losses = saved.model.decode_head.loss_decode
    if config.endswith('_seed.py'):  # the seed's fixed weights, cross-entropy only
        assert isinstance(losses, dict) and len(losses.class_weight) == 3
    else:
        assert [loss.type for loss in losses] == ['IgnoreSafeCrossEntropyLoss', 'ClassDiceLoss']
    if config.endswith('unet_r34.py'):  # the training masks' weights written into the config
        assert losses[0].class_weight == info['class_weight'] and len(info['class_weight']) == 3
    elif config.endswith('deeplabv3plus_r50.py'):  # unweighted cross-entropy
        assert losses[0].class_weight is None and info.get('class_weight') is None
    if not config.endswith('_seed.py'):  # generated data: one object per image, prior on
        assert saved.model.type == 'ObjectPriorEncoderDecoder'
        assert saved.model.test_cfg.one_class is True and info['object_prior']['one_class']
        assert saved.model.test_cfg.largest_object is True
        # flip in validation for DeepLabV3+ only (U-Net did not gain from it on BUSI)
        assert saved.model.test_cfg.get('flip', False) is config.endswith('deeplabv3plus_r50.py')


@pytest.mark.slow
def test_compare_tool_tabulates_the_runs(recipe_runs: Path, tiny_data: Path,
                                         tmp_path: Path) -> None:
    out = tmp_path / 'table'
    proc = subprocess.run(
        [sys.executable, 'tools/compare_recipes.py', *CONFIGS, '--data-root', str(tiny_data),
         '--work-dir', str(recipe_runs), '--reuse', '--out', str(out),
         '--classes', 'bg', 'round', 'angular',
         '--cfg-options', 'train_dataloader.num_workers=0'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.with_suffix('.json').read_text())
    # the options given to every config are named in the recipe column and recorded
    option = ' + train_dataloader.num_workers=0'
    assert [(r['model'], r['recipe']) for r in rows] == [
        ('DeepLabV3+ R50', 'seed' + option), ('DeepLabV3+ R50', 'default' + option),
        ('U-Net R34', 'seed' + option), ('U-Net R34', 'default' + option)]
    assert all(r['cfg_options'] == {'train_dataloader.num_workers': 0} for r in rows)
    # the JSON names the classes as --classes does, the table's columns too
    assert all(list(r['val_dice_per_class']) == ['bg', 'round', 'angular'] for r in rows)
    assert all(0 <= r['val_img_class_acc'] <= 1 for r in rows)  # DiceMetric's img_class_acc
    table = out.with_suffix('.md').read_text()
    assert table in proc.stdout and '| Dice angular | image class right |' in table
    assert table.count('\n') == 6
    assert '**' in table  # the best val mDice in bold


@pytest.mark.slow
def test_compare_tool_adds_the_ensemble_of_the_configs(recipe_runs: Path, tiny_data: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / 'table'
    configs = ['configs/deeplabv3plus_r50.py', 'configs/unet_r34.py']
    proc = subprocess.run(
        [sys.executable, 'tools/compare_recipes.py', *configs, '--data-root', str(tiny_data),
         '--work-dir', str(recipe_runs), '--reuse', '--ensemble', '--out', str(out),
         '--cfg-options', 'train_dataloader.num_workers=0', '--clearml', 'off'],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *members, ensemble = json.loads(out.with_suffix('.json').read_text())
    assert ensemble['model'] == 'ensemble'
    assert ensemble['recipe'] == 'DeepLabV3+ R50 + U-Net R34 + train_dataloader.num_workers=0'
    # the two default runs' best checkpoints, scored together on val
    best = [json.loads((recipe_runs / Path(c).stem / 'run_info.json').read_text())
            ['best_checkpoint'] for c in configs]
    assert ensemble['checkpoints'] == best and ensemble['members'] == configs
    assert ensemble['member_val_mdice'] == [m['val_mdice'] for m in members]
    assert ensemble['gain'] == pytest.approx(
        ensemble['val_mdice'] - max(ensemble['member_val_mdice']), abs=1e-4)
    saved = json.loads((recipe_runs / 'ensemble' / 'ensemble_val.json').read_text())
    assert saved['members'] == [list(pair) for pair in zip(configs, best)]
    assert saved['metrics']['mDice'] == pytest.approx(ensemble['val_mdice'], abs=1e-4)
    table = out.with_suffix('.md').read_text()
    assert '| ensemble | DeepLabV3+ R50 + U-Net R34' in table
    assert 'against its better member, val mDice: ' in table and table in proc.stdout


def test_recipe_names_and_class_name_check() -> None:
    assert recipe_of('configs/unet_r34_seed.py') == ('U-Net R34', 'seed')
    assert recipe_of('configs/deeplabv3plus_r50.py') == ('DeepLabV3+ R50', 'default')
    named = with_options(dict(recipe='default'), {'model.decode_head.dilations': (1, 2, 3, 4)})
    assert named['recipe'] == 'default + model.decode_head.dilations=(1, 2, 3, 4)'
    assert with_options(dict(recipe='default'), None) == dict(recipe='default')
    row = dict(model='m', recipe='r', val_mdice=0.5, val_dice_per_class={'a': 0.9, 'b': 0.1})
    assert '| Dice x | Dice y |' in recipes_markdown([row], ['x', 'y'])
    with pytest.raises(UserError, match='--classes gives 3 names'):
        recipes_markdown([row], ['x', 'y', 'z'])
    seeded = dict(row, val_dice_per_class_mean={'a': 0.9, 'b': 0.1}, runs=[dict(row)])
    relabelled = relabel_classes([seeded], ['x', 'y'])[0]
    assert relabelled['val_dice_per_class_mean'] == {'x': 0.9, 'y': 0.1}
    assert relabelled['runs'][0]['val_dice_per_class'] == {'x': 0.9, 'y': 0.1}
    assert seeded['val_dice_per_class'] == {'a': 0.9, 'b': 0.1}  # the rows are not changed


def test_run_folders_are_shown_relative_to_the_working_directory(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _shown_path(Path('work_dirs/recipes/unet_r34_s1')) == 'work_dirs/recipes/unet_r34_s1'
    assert _shown_path(tmp_path / 'w' / 'run') == str(Path('w') / 'run')
    outside = tmp_path.parent / 'elsewhere'
    assert _shown_path(outside) == str(outside)  # not below it: absolute


def test_auto_class_weights_are_the_training_masks_median_frequency(tiny_data: Path) -> None:
    cfg = load_config('configs/unet_r34.py',
                      {'model.decode_head.loss_decode.0.class_weight': 'auto'})
    set_data_root(cfg, str(tiny_data))
    weights = resolve_class_weights(cfg)
    counts = np.zeros(3, np.int64)
    for path in sorted((tiny_data / 'labels' / 'train').glob('*.png')):
        counts += np.bincount(np.asarray(Image.open(path)).ravel(), minlength=256)[:3]
    assert weights == median_frequency_weights(counts)
    assert weights[0] < weights[1] and weights[0] < weights[2]  # background is the majority
    assert cfg.model.decode_head.loss_decode[0].class_weight == weights
    # 'auto_sqrt': the square roots, rescaled to mean 1 (a milder balance)
    cfg.model.decode_head.loss_decode[0].class_weight = 'auto_sqrt'
    milder = resolve_class_weights(cfg)
    expected = np.sqrt(weights) / np.sqrt(weights).mean()
    np.testing.assert_allclose(milder, expected, atol=1e-4)
    assert weights[1] / weights[0] > milder[1] / milder[0] > 1
    # a model built from an unresolved 'auto' stops with the setting's name
    for auto in ('auto', 'auto_sqrt'):
        with pytest.raises(UserError, match=f"class_weight='{auto}'.*tools/train.py"):
            IgnoreSafeCrossEntropyLoss(class_weight=auto)


@pytest.mark.parametrize('config', CONFIGS)
def test_img_size_sizes_every_pipeline(config: str) -> None:
    cfg = load_config(config, {'img_size': (96, 64)})
    pipelines = [cfg[f'{k}_dataloader'].dataset.pipeline for k in ('train', 'val', 'test')]
    pipelines += [cfg[k] for k in ('train_pipeline', 'test_pipeline') if k in cfg]
    resizes = [t for p in pipelines for t in p if t['type'] in ('Resize', 'RandomResize')]
    assert len(resizes) >= 5 and all(tuple(t['scale']) == (96, 64) for t in resizes)
    # mmseg reads crops and the pad size as (h, w)
    crops = [t for p in pipelines for t in p if t['type'] == 'RandomCrop']
    assert all(tuple(t['crop_size']) == (64, 96) for t in crops)
    assert tuple(cfg.model.data_preprocessor.size) == (64, 96)


def test_lr_schedule_follows_the_epochs() -> None:
    cfg = load_config('configs/unet_r34.py')
    set_max_epochs(cfg)  # the schedule base decays over 30 epochs, the config trains 48
    warmup, decay = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 1)
    assert decay.end == cfg.train_cfg.max_epochs == 48
    set_max_epochs(cfg, 40)
    assert cfg.train_cfg.max_epochs == 40 and decay.end == 40 and warmup.end == 1
    # in one step, as tools/train.py --epochs and --cfg-options do: past the base's 30 too
    for epochs in (12, 28, 65):
        for options, arg in (({}, epochs), ({'train_cfg.max_epochs': epochs}, None)):
            cfg = load_config('configs/unet_r34.py', options)
            set_max_epochs(cfg, arg)
            warmup, decay = cfg.param_scheduler
            assert (warmup.end, decay.end, cfg.train_cfg.max_epochs) == (1, epochs, epochs)


def test_class_dice_loss() -> None:
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:5, 2:5] = 1
    target[1, 6:, 6:] = 2
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    loss = ClassDiceLoss()
    assert loss(perfect, target).item() < 1e-3
    assert loss(-perfect, target).item() > 0.95  # every pixel wrong
    # pixels labelled 255 count for nothing, whatever is predicted there
    ignored = target.clone()
    ignored[0, 0, :] = 255
    noisy = perfect.clone()
    noisy[0, :, 0, :] = torch.randn(3, 8) * 50
    assert loss(noisy, ignored).item() == pytest.approx(loss(perfect, ignored).item(), abs=1e-5)
    # one class all wrong out of three: about a third of the loss
    swapped = perfect.clone()
    swapped[:, [1, 2]] = perfect[:, [2, 1]]
    assert 0.6 < loss(swapped, target).item() < 0.7  # classes 1 and 2 wrong, background right
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    loss(logits, target).backward()
    assert logits.grad.abs().sum() > 0


@pytest.mark.slow
def test_time_budget_ends_training_after_an_epoch(tiny_data: Path, tmp_path: Path) -> None:
    cfg, info = build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'w'),
                                data_root=str(tiny_data), epochs=3, pretrained=None,
                                cfg_options=one_iteration(), time_budget=0.001)
    info = train(cfg, info)
    assert info['epochs'] == 1 and info['time_budget_min'] == 0.001
    assert Path(info['best_checkpoint']).is_file()
    log = next((tmp_path / 'w').glob('*/*.log')).read_text()
    assert 'epochs fit in 0.001 min; max_epochs 3 -> 1' in log
    # the budget record: epochs planned (the config's), fitted, run, and the mean step time
    saved = json.loads((tmp_path / 'w' / 'run_info.json').read_text())
    record = saved['time_budget']
    assert {k: v for k, v in record.items() if k != 'mean_step_s'} == dict(
        minutes=0.001, epochs_planned=3, epochs_fitted=1, epochs_run=1, val_begin=1)
    assert 0 < record['mean_step_s'] == saved['mean_step_s'] < 60
    assert (f"time budget: 0.001 min; epochs planned 3, fitted 1, run 1; mean train step "
            f"{record['mean_step_s']:.3f} s") in log
    with pytest.raises(UserError, match='--time-budget must be a positive'):
        build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'x'),
                        data_root=str(tiny_data), time_budget=0)
    with pytest.raises(UserError, match='time_budget_val_from must be at least 0 and below 1'):
        build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'x'),
                        data_root=str(tiny_data), time_budget=1,
                        cfg_options={'time_budget_val_from': 1.0})


def _last_lr(work_dir: Path) -> float:
    rows = [json.loads(line) for line in
            sorted(work_dir.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()]
    return [row['lr'] for row in rows if 'lr' in row][-1]


def _validated_every_epoch(ends: tuple) -> list[float]:
    """The stand-in clock's readings for epochs ending at ``ends`` (the first: the start),
    each validated in its last 5 s."""
    return [ends[0], *(t for end in ends[1:] for t in (end - 5, end))]


@pytest.mark.slow
@pytest.mark.parametrize('clock, epochs', [((0, 60, 120, 180, 240, 300), 5),
                                           ((0, 60, 120, 200, 280), 4),
                                           ((0, 60, 120, 250), 3),
                                           ((0, 60, 120, 140, 160, 180, 200, 220, 240, 260), 9)])
def test_time_budget_fits_the_schedule(tiny_data: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, clock: tuple,
                                       epochs: int) -> None:
    """Epochs of 60 s (55 s training, 5 s validation; a stand-in clock) and 5 minutes,
    validated every epoch (the default): 5 epochs fit, not the config's 2,
    and the LR decay ends at epoch 5; when epochs turn slower (70-80 s), the length and the
    decay shrink to 4; when they turn faster (20 s), they grow, one epoch at a time, to 9; a
    resumed run keeps the length its checkpoint was fitted to."""
    from smallseg.hooks import time_budget_hook
    ticks = iter(_validated_every_epoch(clock))
    monkeypatch.setattr(time_budget_hook, '_now', lambda: float(next(ticks)))
    cfg, info = build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'w'),
                                data_root=str(tiny_data), epochs=2, pretrained=None,
                                cfg_options=one_iteration(), time_budget=5)
    info = train(cfg, info)
    assert info['epochs'] == epochs
    log = next((tmp_path / 'w').glob('*/*.log')).read_text()
    assert ('55 s per train epoch, 5 s per validation, so 5 epochs fit in 5 min; '
            'max_epochs 2 -> 5') in log
    assert {k: info['time_budget'][k] for k in ('epochs_planned', 'epochs_fitted',
                                                'epochs_run')} == dict(
        epochs_planned=2, epochs_fitted=epochs, epochs_run=epochs)
    if epochs == 5:
        assert _last_lr(tmp_path / 'w') < 2e-6  # the poly decay reached its end (eta_min 1e-6)
    elif epochs == 4:
        assert ('train epochs now take 65 s and validations 5 s, so 4 epochs fit; '
                'max_epochs 5 -> 4') in log
        # the decay was shrunk to end at epoch 4 (one iteration an epoch here, so its last
        # step came after the shrink); unshrunk it would still be at ~3e-4
        assert _last_lr(tmp_path / 'w') < 1e-4
    elif epochs == 9:
        # mean epoch since the first: 40 s after epoch 3 ... 28 s after epoch 6 (5 s of it
        # validation); each growth leaves 5% to spare, and none comes with fewer than two
        # epochs left
        assert ('train epochs now take 35 s and validations 5 s, so 6 epochs fit; '
                'max_epochs 5 -> 6') in log
        assert ('train epochs now take 23 s and validations 5 s, so 9 epochs fit; '
                'max_epochs 8 -> 9') in log
        assert _last_lr(tmp_path / 'w') < 2e-6  # the decay was stretched to the new end
    else:
        assert 'max_epochs 5 -> 3' in log  # the last epoch ran over: nothing left to shrink
        # resumed, the run keeps the length its checkpoint was fitted to (5, not a new fit)
        ticks = iter(_validated_every_epoch((0, 60, 120, 180)))
        cfg, info = build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'w'),
                                    data_root=str(tiny_data), epochs=2, pretrained=None,
                                    cfg_options=one_iteration(), time_budget=5, resume=True)
        assert train(cfg, info)['epochs'] == 5
        assert _last_lr(tmp_path / 'w') < 2e-6


@pytest.mark.slow
def test_time_budget_validates_the_second_half(tiny_data: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Train epochs of 40 s, validations of 20 s, 10 minutes: validating every epoch fits 10
    epochs; ``time_budget_val_from=0.5`` (the first epoch, then from half the run on) fits 11
    (validated: 1, 6-11)."""
    from smallseg.hooks import time_budget_hook
    validated = {1, 6, 7, 8, 9, 10, 11}
    clock, now = [0.0], 0.0
    for epoch in range(1, 12):
        now += 40
        clock += [now, now + 20] if epoch in validated else [now]
        now += 20 if epoch in validated else 0
    ticks = iter(clock)
    monkeypatch.setattr(time_budget_hook, '_now', lambda: float(next(ticks)))
    cfg, info = build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'w'),
                                data_root=str(tiny_data), epochs=2, pretrained=None,
                                cfg_options={**one_iteration(), 'time_budget_val_from': 0.5},
                                time_budget=10)
    info = train(cfg, info)
    assert info['epochs'] == 11 and info['time_budget']['val_begin'] == 6
    log = next((tmp_path / 'w').glob('*/*.log')).read_text()
    assert ('40 s per train epoch, 20 s per validation, so 11 epochs fit in 10 min; '
            'max_epochs 2 -> 11') in log
    assert 'validation (20 s) after epoch 1, then from epoch 6 on' in log
    assert 'validated after epoch 1 and from epoch 6 on' in log
    assert sorted({int(line.split('Epoch(val) [')[1].split(']')[0])
                   for line in log.splitlines() if 'Epoch(val) [' in line}) == sorted(validated)
    assert _last_lr(tmp_path / 'w') < 2e-6  # the decay ends at epoch 11
    assert json.loads((tmp_path / 'w' / 'train_settings.json').read_text())[
        'time_budget_val_from'] == 0.5


@pytest.mark.slow
def test_class_weights_anneal_from_auto_to_the_configured(tiny_data: Path,
                                                          tmp_path: Path) -> None:
    """unet_r34.py: the cross-entropy starts with 'auto' (the square of its 'auto_sqrt'
    weights) and reaches its own weights halfway (3 iterations: powers 2, 1.33, 1)."""
    from smallseg.hooks.class_weight_anneal_hook import annealed_weights
    cfg, info = build_train_cfg('configs/unet_r34.py', work_dir=str(tmp_path / 'w'),
                                data_root=str(tiny_data), epochs=3, pretrained=None,
                                cfg_options=one_iteration())
    assert 'ClassWeightAnnealHook' in [hook['type'] for hook in cfg.custom_hooks]
    configured = cfg.model.decode_head.loss_decode[0].class_weight
    auto = copy.deepcopy(cfg)
    auto.model.decode_head.loss_decode[0].class_weight = 'auto'
    resolve_class_weights(auto)
    full = np.array(auto.model.decode_head.loss_decode[0].class_weight)
    assert np.allclose(annealed_weights(configured, 2.0), full / full.mean(), atol=1e-3)
    train(cfg, info)
    log = next((tmp_path / 'w').glob('*/*.log')).read_text()
    lines = [line.split('class weights at power ')[1] for line in log.splitlines()
             if 'class weights at power ' in line]
    assert [line.split()[0] for line in lines] == ['2.00', '1.33', '1.00']
    assert lines[-1].endswith(str([round(w, 3) for w in annealed_weights(configured, 1.0)]))


@pytest.mark.slow
def test_flip_test_time_augmentation(recipe_runs: Path, tiny_data: Path, tmp_path: Path) -> None:
    from smallseg.apis.test import build_test_cfg, evaluate
    info = json.loads((recipe_runs / 'unet_r34' / 'run_info.json').read_text())
    options = {'model.data_preprocessor.size': (64, 64), 'img_size': (64, 64)}
    metrics = {}
    for tta in (False, True):
        cfg = build_test_cfg('configs/unet_r34.py', info['best_checkpoint'], split='val',
                             data_root=str(tiny_data), work_dir=str(tmp_path / str(tta)),
                             cfg_options=options, tta=tta)
        assert cfg.model.test_cfg.get('flip', False) is tta
        metrics[tta] = evaluate(cfg)
    assert set(metrics[True]) >= {'mDice', 'mDice_fg', 'Dice.round'}
    assert 0.0 <= metrics[True]['mDice'] <= 1.0
