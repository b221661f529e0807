"""Evaluation entry point used by tools/test.py and the main job."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from smallseg.evaluation.dice_metric import metrics_to_fractions

from .config import (check_data_root, configure_amp, configure_launcher, configure_workers,
                     default_work_dir, load_config, set_data_root)
from ..utils.errors import UserError
from ..utils.run_info import RUN_INFO, device_name
from .class_weights import settle_class_weights
from .object_prior import settle_object_prior
from .outputs import check_output_dir
from .results import update_results
from .validate import validate_dataset


def check_checkpoint(path: str | Path, cfg: Config) -> dict:
    """Load ``path`` once to verify it is a checkpoint of this model; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'checkpoint {path} not found')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as exc:
        raise UserError(f'checkpoint {path} cannot be read ({type(exc).__name__}); '
                        'is it a .pth written by tools/train.py?') from exc
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserError(f'checkpoint {path} holds no state_dict')
    seg = state.get('decode_head.conv_seg.weight')
    expected = cfg.model.decode_head.num_classes
    if seg is not None and seg.shape[0] != expected:
        raise UserError(f'checkpoint {path} predicts {seg.shape[0]} classes, the config '
                        f'{expected}: pass the config it was trained with')
    if cfg.model.backbone.type == 'ResNet' and any(
            k.startswith('decode_head.blocks.') for k in state):
        raise UserError(f'checkpoint {path} is a U-Net checkpoint; use configs/unet_r34.py')
    if cfg.model.backbone.type == 'ResNetWithStem' and any(
            k.startswith('decode_head.aspp_modules') for k in state):
        raise UserError(f'checkpoint {path} is a DeepLabV3+ checkpoint; '
                        'use configs/deeplabv3plus_r50.py')
    return ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}


def settle_auto(cfg: Config, meta: Optional[dict]) -> None:
    """Give the ``'auto'`` values of a model built to test or predict the checkpoint's
    (``meta['cfg']``, the training run's config): the one-object prior's decision and the
    class weights; off and unweighted where the checkpoint has no record."""
    settle_object_prior(cfg, meta)
    settle_class_weights(cfg, meta)


def set_flip(cfg: Config) -> None:
    """Predict from the mean of each image's and its mirror's probabilities: ``flip`` in
    ``model.test_cfg`` of :class:`smallseg.models.ObjectPriorEncoderDecoder` (a plain
    ``EncoderDecoder`` becomes one; without prior keys it predicts as before)."""
    if cfg.model.get('type') == 'EncoderDecoder':
        cfg.model.type = 'ObjectPriorEncoderDecoder'
    if cfg.model.get('type') != 'ObjectPriorEncoderDecoder':
        raise UserError(f"--tta: flip needs model type 'ObjectPriorEncoderDecoder' or "
                        f"'EncoderDecoder', got {cfg.model.get('type')!r}")
    cfg.model.test_cfg = dict(cfg.model.get('test_cfg') or dict(mode='whole'), flip=True)


def _load_split(config: str | Path, split: str, work_dir: Optional[str],
                data_root: Optional[str], cfg_options: Optional[dict],
                csv_path: Optional[str | Path]) -> Config:
    """``config`` set to score ``split``, its data checked and the work dir writable."""
    if split not in ('val', 'test'):
        raise UserError(f"--split must be 'val' or 'test', got {split!r}")
    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    set_data_root(cfg, data_root)
    if split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    if csv_path and isinstance(cfg.test_evaluator, dict) and (
            cfg.test_evaluator.get('type') == 'DiceMetric'):
        cfg.test_evaluator.csv_path = str(csv_path)
    check_data_root(cfg, ('test_dataloader',))
    validate_dataset(cfg, loaders=('test_dataloader',), purpose='test',
                     names={'test_dataloader': split})
    check_output_dir(cfg.work_dir, '--work-dir', what='work dir')
    return cfg


def _configure_run(cfg: Config, amp: Optional[str], launcher: str,
                   show_dir: Optional[str]) -> None:
    configure_amp(cfg, amp or cfg.get('amp', 'auto'))
    configure_workers(cfg)
    configure_launcher(cfg, launcher)
    if show_dir:
        vis = cfg.default_hooks.visualization
        vis.update(draw=True, interval=1, show=False)
        cfg.visualizer.save_dir = str(show_dir)


def build_test_cfg(config: str | Path, checkpoint: str | Path, split: str = 'test',
                   work_dir: Optional[str] = None, data_root: Optional[str] = None,
                   amp: Optional[str] = None, show_dir: Optional[str] = None,
                   cfg_options: Optional[dict] = None, launcher: str = 'none',
                   csv_path: Optional[str | Path] = None, tta: bool = False) -> Config:
    """Config for evaluating ``checkpoint`` on ``split`` ('val' or 'test').

    ``csv_path``: where the evaluator (DiceMetric) writes one row per image. ``tta``: flip
    test-time augmentation, as mmseg's --tta, by the model's own ``test_cfg.flip``
    (:func:`set_flip`).
    The split is checked first as the training data is (:func:`.validate.validate_dataset`):
    a pair that cannot be scored stops the run before the model is built, and the work dir
    must be writable.
    """
    cfg = _load_split(config, split, work_dir, data_root, cfg_options, csv_path)
    settle_auto(cfg, check_checkpoint(checkpoint, cfg))
    cfg.load_from = str(checkpoint)
    cfg.model.backbone.init_cfg = None  # weights come from the checkpoint
    if tta:
        set_flip(cfg)
    _configure_run(cfg, amp, launcher, show_dir)
    return cfg


def pair_up(paths: Sequence[str]) -> list[tuple[str, str]]:
    """``[CONFIG, CHECKPOINT, CONFIG, CHECKPOINT, ...]`` as pairs; an odd count is an error
    naming the config left without a checkpoint."""
    paths = [str(p) for p in paths]
    if len(paths) % 2:
        raise UserError(f'models come as CONFIG CHECKPOINT pairs: {paths[-1]} has no '
                        f'checkpoint ({len(paths)} paths given)')
    return list(zip(paths[::2], paths[1::2]))


def _classes(cfg: Config, meta: dict) -> tuple[str, ...]:
    """The class names a member predicts: its checkpoint's, else its config's, else
    ``num_classes`` numbered classes."""
    classes = (meta.get('dataset_meta') or {}).get('classes') or (
        cfg.get('metainfo') or {}).get('classes')
    if not classes:
        classes = [f'class_{i}' for i in range(cfg.model.decode_head.num_classes)]
    return tuple(classes)


def _input_size(cfg: Config) -> Optional[tuple[int, int]]:
    """``(h, w)`` of the fixed-size Resize of a config's test pipeline; None without one."""
    for t in cfg.test_dataloader.dataset.get('pipeline', []):
        if t.get('type') == 'Resize':
            scale = t.get('scale')
            if t.get('keep_ratio') or not isinstance(scale, (list, tuple)):
                return None
            return int(scale[1]), int(scale[0])
    return None


def ensemble_members(pairs: Sequence[tuple[str, str]], cfg_options: Optional[dict] = None,
                     tta: bool = False) -> tuple[list[dict], list[Config]]:
    """One ``EnsembleSegmentor`` member spec per ``(config, checkpoint)`` and the members'
    configs: each checkpoint checked against its config, its 'auto' values settled from the
    checkpoint, ``tta`` switching flip on in every member; members predicting different
    classes are an error naming both configs."""
    specs, cfgs, classes = [], [], []
    for config, checkpoint in pairs:
        cfg = load_config(config, cfg_options)
        meta = check_checkpoint(checkpoint, cfg)
        settle_auto(cfg, meta)
        cfg.model.backbone.init_cfg = None  # weights come from the checkpoint
        if tta:
            set_flip(cfg)
        classes.append(_classes(cfg, meta))
        if classes[-1] != classes[0]:
            raise UserError(f'ensemble members predict different classes: {pairs[0][0]} '
                            f'({", ".join(classes[0])}) and {config} '
                            f'({", ".join(classes[-1])}); an ensemble averages one set')
        specs.append(dict(model=cfg.model.to_dict(), checkpoint=str(checkpoint),
                          name=str(config), input_size=_input_size(cfg)))
        cfgs.append(cfg)
    return specs, cfgs


def ensemble_pipeline(pipeline: list, members: Sequence[Config]) -> list:
    """The test pipeline an ensemble's data goes through: ``pipeline`` (the first member's)
    when every member's test pipeline is the same; else without its Resize, each member
    resizing the original image to its own fixed size."""
    pipelines = [m.test_dataloader.dataset.get('pipeline', []) for m in members]
    if all(p == pipelines[0] for p in pipelines):
        return list(pipeline)
    for cfg in members:
        if _input_size(cfg) is None:
            raise UserError(f'{cfg.filename}: ensemble members with different test '
                            'pipelines need a fixed-size Resize (keep_ratio=False) in each')
    return [t for t in pipeline if t.get('type') != 'Resize']


def build_ensemble_test_cfg(pairs: Sequence[tuple[str, str]], split: str = 'test',
                            work_dir: Optional[str] = None, data_root: Optional[str] = None,
                            amp: Optional[str] = None, show_dir: Optional[str] = None,
                            cfg_options: Optional[dict] = None, launcher: str = 'none',
                            csv_path: Optional[str | Path] = None, tta: bool = False,
                            weights: Optional[Sequence[float]] = None) -> Config:
    """Config for evaluating the ensemble of ``pairs`` (``(config, checkpoint)``, two or
    more) on ``split``: the first config's data, evaluator and runtime, the model an
    :class:`smallseg.models.EnsembleSegmentor` of all (mean class probabilities at the mask
    size, then the first member's one-object prior). Work dir: ``work_dirs/ensemble``."""
    if len(pairs) < 2:
        raise UserError(f'an ensemble needs two or more CONFIG CHECKPOINT pairs, got '
                        f'{len(pairs)}')
    first = pairs[0][0]
    work_dir = work_dir or str(Path(default_work_dir(first)).parent / 'ensemble')
    cfg = _load_split(first, split, work_dir, data_root, cfg_options, csv_path)
    specs, members = ensemble_members(pairs, cfg_options, tta)
    dataset = cfg.test_dataloader.dataset
    dataset.pipeline = ensemble_pipeline(dataset.pipeline, members)
    # the ensemble's preprocessor only moves the batch to the device: each member
    # normalises and pads it its own way (not the top-level data_preprocessor of the config)
    cfg.model = dict(type='EnsembleSegmentor', members=specs,
                     weights=list(weights) if weights else None,
                     data_preprocessor=dict(type='BaseDataPreprocessor'))
    cfg.load_from = None  # each member loads its own checkpoint
    _configure_run(cfg, amp, launcher, show_dir)
    return cfg


def evaluate(cfg: Config) -> dict:
    """Run mmengine's test loop; scores are returned as fractions (0-1), not percent."""
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    metrics = metrics_to_fractions(runner.test())
    metrics['eval_time_s'] = round(time.perf_counter() - start, 1)
    return metrics


def per_class(metrics: dict, kind: str = 'Dice') -> dict[str, Optional[float]]:
    """``{class: value}`` from the evaluator's ``<kind>.<class>`` keys (in class order)."""
    prefix = f'{kind}.'
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}


def class_table(metrics: dict) -> str:
    """The per-class Dice / IoU / accuracy table (fractions) printed by tools/test.py."""
    dice, iou, acc = (per_class(metrics, k) for k in ('Dice', 'IoU', 'Acc'))
    width = max([len('class')] + [len(c) for c in dice])

    def fmt(v: Optional[float]) -> str:
        return f'{v:>8.4f}' if isinstance(v, (int, float)) else f'{"-":>8}'

    lines = [f'{"class":<{width}}{"Dice":>8}{"IoU":>8}{"Acc":>8}']
    lines += [f'{c:<{width}}{fmt(dice[c])}{fmt(iou.get(c))}{fmt(acc.get(c))}' for c in dice]
    lines.append(f'{"mean":<{width}}{fmt(metrics.get("mDice"))}{fmt(metrics.get("mIoU"))}'
                 f'{fmt(metrics.get("mAcc"))}')
    lines.append(f'{"mean fg":<{width}}{fmt(metrics.get("mDice_fg"))}'
                 f'{fmt(metrics.get("mIoU_fg"))}')
    return '\n'.join(lines)


def output_paths(out: str | Path, name: str, split: str) -> dict[str, Path]:
    """``--out`` (a .json file, or a folder) -> metrics JSON, per-image CSV, confusion PNG.

    A folder gets ``<name>_<split>_{metrics.json,per_image.csv,confusion_matrix.png}``;
    ``x.json`` gets ``x.json``, ``x_per_image.csv`` and ``x_confusion_matrix.png`` beside it.
    """
    out = Path(out)
    if out.suffix == '.json':
        stem, metrics = out.with_suffix(''), out
    else:
        stem = out / f'{name}_{split}'
        metrics = out / f'{stem.name}_metrics.json'
    return {'metrics': metrics, 'per_image': stem.with_name(f'{stem.name}_per_image.csv'),
            'confusion': stem.with_name(f'{stem.name}_confusion_matrix.png')}


def write_outputs(paths: dict[str, Path], metrics: dict, title: str) -> None:
    """Write the metrics JSON and the confusion-matrix picture (the CSV comes from the metric)."""
    from smallseg.analysis.figures import plot_confusion_matrix
    paths['metrics'].parent.mkdir(parents=True, exist_ok=True)
    paths['metrics'].write_text(json.dumps(metrics, indent=2) + '\n')
    if metrics.get('confusion_matrix'):
        plot_confusion_matrix(metrics['confusion_matrix'], list(per_class(metrics)),
                              paths['confusion'], title=title)


def metric_fields(split: str, metrics: dict) -> dict:
    """The results.json fields of one evaluation: ``<split>_mdice``, ``<split>_miou``,
    ``<split>_mdice_fg``, ``<split>_mdice_per_image``, ``<split>_dice_per_class`` and
    ``<split>_iou_per_class``."""
    return {f'{split}_mdice': metrics.get('mDice'), f'{split}_miou': metrics.get('mIoU'),
            f'{split}_mdice_fg': metrics.get('mDice_fg'),
            f'{split}_mdice_per_image': metrics.get('mDice_per_image'),
            f'{split}_dice_per_class': per_class(metrics, 'Dice'),
            f'{split}_iou_per_class': per_class(metrics, 'IoU')}


def record_ensemble_results(results_path: str | Path, name: str, split: str, metrics: dict,
                            pairs: Sequence[tuple[str, str]],
                            weights: Optional[Sequence[float]] = None) -> dict:
    """Merge an ensemble's evaluation into results.json under ``ensembles[name]``: the
    metric fields of a model's entry (:func:`metric_fields`), ``members`` (``[{config,
    checkpoint}]``), ``weights`` when given, ``device`` and ``evaluated``. Ensembles are
    kept apart from ``models`` (the trained runs): they have no training record and take no
    part in ``best_model``."""
    entry = dict(metric_fields(split, metrics),
                 members=[dict(config=str(c), checkpoint=str(k)) for c, k in pairs],
                 device=device_name(), evaluated=time.strftime('%Y-%m-%d'))
    if weights:
        entry['weights'] = list(weights)
    return update_results(results_path, name, entry, section='ensembles')


def record_results(results_path: str | Path, model_name: str, split: str, metrics: dict,
                   config: str | Path, checkpoint: str | Path) -> dict:
    """Merge this evaluation (and the training run's info, if found) into results.json.

    Fields: ``<split>_mdice``, ``<split>_miou``, ``<split>_mdice_fg``,
    ``<split>_mdice_per_image``, ``<split>_dice_per_class`` / ``<split>_iou_per_class``
    (``{class: Dice}``), ``config``, ``checkpoint``, ``evaluated`` (date), ``device``; from the
    run's run_info.json: ``val_mdice`` (best val mDice), ``epochs``, ``best_epoch``,
    ``wall_time_s``, ``init``, ``precision``, ``recipe`` (the config's settings as written;
    ``device`` = the training device); from its
    logs: ``val_dice_per_class`` at the best epoch.
    """
    entry = dict(metric_fields(split, metrics), config=str(config),
                 checkpoint=str(checkpoint), device=device_name(),
                 evaluated=time.strftime('%Y-%m-%d'))
    run_info = Path(checkpoint).parent / RUN_INFO
    if run_info.is_file():
        info = json.loads(run_info.read_text())
        if split == 'test' and info.get('best_val_mdice') is not None:
            entry.setdefault('val_mdice', info['best_val_mdice'])
        entry.update({k: info.get(k) for k in (
            'epochs', 'best_epoch', 'wall_time_s', 'init', 'precision', 'recipe')})
        if info.get('class_weight') is not None:  # class_weight='auto', resolved
            entry['class_weight'] = info['class_weight']
        entry['device'] = info.get('device') or entry['device']
        if split == 'test':
            entry.update(_val_dice_at_best_epoch(run_info.parent, info.get('best_epoch')))
    return update_results(results_path, model_name, entry)


def _val_dice_at_best_epoch(work_dir: Path, epoch: Optional[int]) -> dict:
    """``val_dice_per_class`` read from the training logs (empty when not logged)."""
    from smallseg.analysis.curves import read_curves
    curves = read_curves(work_dir)
    if epoch is None or epoch not in curves['val_epochs']:
        return {}
    i = curves['val_epochs'].index(epoch)
    dice = {k[5:]: round(v[i], 4) for k, v in curves['val'].items() if k.startswith('Dice.')}
    return {'val_dice_per_class': dice} if dice else {}
