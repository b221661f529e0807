"""Model comparison from results.json: detailed JSON, Markdown table, per-model experiment cards.

Writes ``<out_dir>/detailed_comparison.json``, ``<out_dir>/comparison.md`` (models x metrics,
best value of each column in bold; ensembles of the models as further rows, without training
columns) and ``<out_dir>/<model>_best.json`` (the report's
``configs/*_best.json``: architecture, encoder, loss, optimiser, schedule, augmentations,
results, date), built from each model's config file and results entry.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

# (results key, column header, higher is better)
COLUMNS = [('val_mdice', 'val mDice', True), ('test_mdice', 'test mDice', True),
           ('test_mdice_fg', 'test mDice fg', True), ('test_miou', 'test mIoU', True),
           ('test_mdice_per_image', 'test mDice/img', True)]
EXTRA = [('best_epoch', 'best epoch', None), ('epochs', 'epochs', None),
         ('wall_time_s', 'train time (s)', False)]
HEADS = {'DepthwiseSeparableASPPHead': 'DeepLabV3+', 'ASPPHead': 'DeepLabV3',
         'UNetHead': 'U-Net', 'FCNHead': 'FCN', 'UPerHead': 'UPerNet', 'PSPHead': 'PSPNet',
         'SegformerHead': 'SegFormer'}
NOT_AUGMENTATION = ('LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs', 'Resize')


def _class_columns(models: dict) -> list[tuple[str, str, bool]]:
    """One column per class found in any model's ``test_dice_per_class``."""
    names: list[str] = []
    for m in models.values():
        names += [c for c in (m.get('test_dice_per_class') or {}) if c not in names]
    return [(f'test_dice_per_class.{c}', f'Dice {c}', True) for c in names]


def _value(entry: dict, key: str) -> Any:
    """``entry[key]``; ``test_dice_per_class.<class>`` reads inside the per-class dict."""
    head, _, cls = key.partition('.')
    return (entry.get(head) or {}).get(cls) if cls else entry.get(key)


def _best(models: dict, key: str, higher: Optional[bool]) -> list[str]:
    if higher is None:
        return []
    scored = {n: _value(m, key) for n, m in models.items()}
    scored = {n: v for n, v in scored.items() if isinstance(v, (int, float))}
    if not scored:
        return []
    target = max(scored.values()) if higher else min(scored.values())
    return sorted(n for n, v in scored.items() if v == target)


def ensemble_label(name: str, entry: dict) -> str:
    """``ensemble (a + b)``: the ensemble's name and its members' config names."""
    members = [Path(m.get('config') or '?').stem for m in entry.get('members') or []]
    return f"{name} ({' + '.join(members)})" if members else name


def detailed_comparison(results: dict) -> dict:
    """Every model's metrics side by side, the best model per metric and a ranking;
    ensembles (``results['ensembles']``) apart, with their members."""
    models = results.get('models', {})
    ensembles = results.get('ensembles', {})
    columns = COLUMNS + _class_columns(models | ensembles) + EXTRA
    rank_key = results.get('best_by') or 'test_mdice'
    ranking = sorted(models, key=lambda n: -(models[n].get(rank_key) or -1.0))
    return dict(
        generated=time.strftime('%Y-%m-%d %H:%M:%S'),
        best_model=results.get('best_model'), best_by=rank_key,
        best_mdice=results.get('best_mdice'), target=results.get('target'),
        target_achieved=results.get('target_achieved'), ranking=ranking,
        metrics={key: header for key, header, _ in columns},
        models={n: {key: _value(models[n], key) for key, _, _ in columns}
                | {k: models[n].get(k) for k in ('device', 'config', 'checkpoint')}
                for n in ranking},
        ensembles={n: {key: _value(e, key) for key, _, hi in columns if hi is not None}
                   | {k: e.get(k) for k in ('device', 'members', 'weights') if k in e}
                   for n, e in ensembles.items()},
        best_per_metric={key: _best(models | ensembles, key, hi) for key, _, hi in columns
                         if hi is not None})


def comparison_markdown(results: dict) -> str:
    """A Markdown table, models x metrics, the best value of each score column in bold;
    each ensemble a row after the models (bold where it beats them; no training columns,
    never the best model, which is a trained one)."""
    models = results.get('models', {})
    ensembles = {f'ensemble:{n}': e for n, e in results.get('ensembles', {}).items()}
    rows = models | ensembles
    columns = COLUMNS + _class_columns(rows) + EXTRA
    columns = [c for c in columns if any(_value(m, c[0]) is not None for m in rows.values())]
    lines = ['| model | ' + ' | '.join(h for _, h, _ in columns) + ' |',
             '|---|' + '---:|' * len(columns)]
    for name in detailed_comparison(results)['ranking'] + list(ensembles):
        cells = []
        for key, _, higher in columns:
            v = _value(rows[name], key)
            text = '–' if v is None else f'{v:.4f}' if higher else f'{v:g}'
            if v is not None and name in _best(rows, key, higher) and len(rows) > 1:
                text = f'**{text}**'
            cells.append(text)
        if name in ensembles:
            label = ensemble_label(name.split(':', 1)[1], rows[name])
        else:
            label = name + (' (best)' if name == results.get('best_model') else '')
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    target = results.get('target')
    lines += ['', f"Best model: **{results.get('best_model')}** ({results.get('best_by')} "
              f"{results.get('best_mdice')}); target mDice > {target}: "
              f"{'achieved' if results.get('target_achieved') else 'not achieved'}.",
              'mDice: mean Dice over all classes, background included, dataset-level (pixel '
              'sums over the split); mDice fg: classes >= 1; mDice/img: mean of per-image mDice. '
              'Bold: best of the column.']
    if ensembles:
        lines.append('Ensemble: the mean class probabilities of the models named, then the '
                     'one-object prior; it is not trained, so it has no training columns.')
    return '\n'.join(lines) + '\n'


def experiment_summary(name: str, entry: dict) -> dict:
    """The report's experiment card for one model, from its config file and results entry."""
    card: dict[str, Any] = dict(model=name, config=entry.get('config'))
    path = Path(entry.get('config') or '')
    if path.is_file():
        card.update(_config_card(path, entry.get('class_weight')))
    else:
        card['note'] = f'config {path} not found; results only'
    card['encoder_init'] = entry.get('init')
    card['results'] = {k: entry.get(k) for k in (
        'val_mdice', 'test_mdice', 'test_mdice_fg', 'test_miou', 'test_mdice_per_image',
        'test_dice_per_class', 'test_iou_per_class', 'val_dice_per_class', 'best_epoch',
        'epochs', 'wall_time_s', 'device', 'precision', 'checkpoint') if k in entry}
    card['date'] = entry.get('evaluated') or time.strftime('%Y-%m-%d')
    return card


def _config_card(path: Path, class_weight: Optional[list] = None) -> dict:
    """``class_weight``: the run's resolved weights where the config says 'auto'."""
    from mmengine.config import Config

    from ..apis.class_weights import AUTO_POWERS
    cfg = Config.fromfile(str(path))
    model, head = cfg.model, cfg.model.decode_head
    backbone = model.backbone
    losses = head.get('loss_decode', {})
    losses = list(losses) if isinstance(losses, (list, tuple)) else [losses]

    def loss_card(loss: dict) -> dict:
        weight = loss.get('class_weight')
        if isinstance(weight, str) and weight in AUTO_POWERS and class_weight is not None:
            weight = class_weight
        return dict(type=loss.get('type'), class_weight=weight,
                    loss_weight=loss.get('loss_weight', 1.0))
    pipeline = cfg.train_dataloader.dataset.pipeline
    resize = next((t for t in pipeline if t.get('type') == 'Resize'), None)
    pre = model.get('data_preprocessor', {})
    opt = cfg.optim_wrapper.optimizer
    return dict(
        architecture=HEADS.get(head.type, head.type), segmentor=model.type,
        decode_head=head.type,
        encoder=f"{backbone.type}-{backbone.get('depth', '')}".rstrip('-'),
        num_classes=head.num_classes,
        loss=loss_card(losses[0]) if len(losses) == 1 else [loss_card(x) for x in losses],
        optimizer={k: v for k, v in opt.items()},
        schedule=dict(max_epochs=cfg.train_cfg.get('max_epochs'),
                      batch_size=cfg.train_dataloader.batch_size,
                      param_scheduler=cfg.get('param_scheduler') or 'constant lr',
                      best_checkpoint_by=cfg.default_hooks.checkpoint.get('save_best')),
        image_size=list(resize['scale']) if resize and 'scale' in resize else None,
        augmentations=[{k: v for k, v in t.items()} for t in pipeline
                       if t.get('type') not in NOT_AUGMENTATION],
        normalisation=dict(mean=pre.get('mean'), std=pre.get('std')))


def write_comparison(results_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the comparison JSON, the Markdown table and one card per model; return paths."""
    from smallseg.apis.results import read_results
    results = read_results(results_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'detailed_comparison': out / 'detailed_comparison.json',
             'comparison_md': out / 'comparison.md'}
    paths['detailed_comparison'].write_text(
        json.dumps(detailed_comparison(results), indent=2) + '\n')
    paths['comparison_md'].write_text(comparison_markdown(results))
    for name, entry in results.get('models', {}).items():
        paths[f'{name}_best'] = out / f'{name}_best.json'
        paths[f'{name}_best'].write_text(
            json.dumps(experiment_summary(name, entry), indent=2, default=str) + '\n')
    return paths
