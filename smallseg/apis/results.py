"""``results.json``: per-model val/test mDice and the best model, in the seed report's schema."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine.atomic_io import atomic_write
from ..utils.errors import UserError

TARGET_MDICE = 0.75
REPO_ROOT = Path(__file__).resolve().parents[2]


def recipe_settings(cfg: Any) -> dict:
    """What a config trains with, as written (``'auto'`` values unresolved): model, losses,
    prior and flip, optimiser, batch, input size, epochs, hooks and augmentation. Recorded in
    run_info.json and results.json, so a report can be checked against the configs."""
    model = cfg.model
    losses = model.decode_head.get('loss_decode')
    losses = losses if isinstance(losses, (list, tuple)) else [losses]
    optimizer = cfg.optim_wrapper.optimizer
    recipe = dict(
        model=dict(type=model.type, backbone=model.backbone.type,
                   depth=model.backbone.get('depth'), strides=model.backbone.get('strides'),
                   decode_head=model.decode_head.type),
        losses=[dict(type=loss.type, class_weight=loss.get('class_weight'),
                     loss_weight=loss.get('loss_weight')) for loss in losses],
        test_cfg=model.get('test_cfg'),
        optimizer=dict(type=optimizer.type, lr=optimizer.lr,
                       weight_decay=optimizer.get('weight_decay')),
        batch_size=cfg.train_dataloader.batch_size,
        img_size=cfg.get('img_size'),
        max_epochs=cfg.train_cfg.get('max_epochs'),
        custom_hooks=cfg.get('custom_hooks'),
        train_pipeline=cfg.train_dataloader.dataset.pipeline)
    return json.loads(json.dumps(recipe, default=str))


def stale_recipes(path: str | Path, root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Per model of the results file at ``path``: the recipe settings that differ from what
    its config file (relative to ``root``) says now; empty when the report matches the code."""
    from .config import load_config
    stale = {}
    for name, entry in read_results(path)['models'].items():
        recorded = entry.get('recipe')
        if recorded is None:
            stale[name] = ['recipe (not recorded)']
            continue
        current = recipe_settings(load_config(root / entry['config']))
        changed = [key for key in current if recorded.get(key) != current[key]]
        if changed:
            stale[name] = changed
    return stale


def read_results(path: str | Path) -> dict:
    """The current results, or an empty skeleton when the file does not exist yet."""
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f'{path} is not valid JSON ({exc}); fix or remove it') from exc
        data.setdefault('models', {})
        return data
    return {'models': {}}


def update_results(path: str | Path, model: str, entry: dict[str, Any],
                   target: float = TARGET_MDICE, section: str = 'models') -> dict:
    """Merge ``entry`` into ``<section>[model]`` and recompute the summary fields.

    ``section``: ``'models'`` (trained runs) or ``'ensembles'`` (ensembles of them).
    Summary: ``best_model`` / ``best_mdice`` by test mDice (val mDice when no model has a
    test score) over ``models``, ``target`` and ``target_achieved`` (best_mdice > target).
    """
    path = Path(path)
    data = read_results(path)
    data.setdefault(section, {}).setdefault(model, {}).update(entry)
    key = 'test_mdice' if any(
        m.get('test_mdice') is not None for m in data['models'].values()) else 'val_mdice'
    scored = {name: m[key] for name, m in data['models'].items() if m.get(key) is not None}
    best = max(scored, key=scored.get) if scored else None
    data.update(
        best_model=best,
        best_mdice=scored.get(best) if best else None,
        best_by=key,
        target=target,
        target_achieved=bool(best is not None and scored[best] > target))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2) + '\n')
    return data
