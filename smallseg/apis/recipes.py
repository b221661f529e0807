"""Recipe comparison: train several configs on one dataset and tabulate their best val epoch.

Each config trains into ``<work_root>/<config name>`` (an existing finished run is reused with
``reuse=True``); a row holds the model, the recipe (``*_seed`` configs: the seed report's), the
epochs trained, the training minutes (validation included), and at the best val epoch mDice,
mDice_fg, the Dice of each class and the share of images given their true class (DiceMetric's
``img_class_acc``), read from the run's logs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

from ..analysis.curves import read_curves
from ..utils.errors import UserError
from ..utils.run_info import RUN_INFO
from .train import build_train_cfg, train

MODEL_NAMES = {'deeplabv3plus_r50': 'DeepLabV3+ R50', 'unet_r34': 'U-Net R34'}


def recipe_of(config: str | Path) -> tuple[str, str]:
    """``(model, recipe)`` names of a config file: ``unet_r34_seed.py`` -> U-Net R34, seed;
    ``unet_r34_pretrained.py`` -> U-Net R34, pretrained."""
    base, recipe = Path(config).stem, 'default'
    for suffix in ('seed', 'pretrained'):
        if base.endswith(f'_{suffix}'):
            base, recipe = base[:-len(suffix) - 1], suffix
    return MODEL_NAMES.get(base, base), recipe


def recipe_row(config: str | Path, info: dict) -> dict:
    """The table row of a finished run (``info``: its run_info.json)."""
    work_dir = Path(info['work_dir'])
    model, recipe = recipe_of(config)
    row = dict(model=model, recipe=recipe, config=str(config), epochs=info.get('epochs'),
               train_min=round(info['wall_time_s'] / 60.0, 1) if info.get('wall_time_s')
               else None, init=(info.get('init') or {}).get('init'),
               best_epoch=info.get('best_epoch'), time_budget_min=info.get('time_budget_min'),
               device=info.get('device'), work_dir=str(work_dir))
    curves = read_curves(work_dir)
    epoch = info.get('best_epoch')
    if epoch in curves['val_epochs']:
        i = curves['val_epochs'].index(epoch)
        val = {k: v[i] for k, v in curves['val'].items()}
        row.update(val_mdice=_round(val.get('mDice')), val_mdice_fg=_round(val.get('mDice_fg')),
                   val_img_class_acc=_round(val.get('img_class_acc')),
                   val_dice_per_class={k[5:]: _round(v) for k, v in val.items()
                                       if k.startswith('Dice.')})
    return row


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)


def compare_recipes(configs: Sequence[str | Path], data_root: str | Path, work_root: str | Path,
                    time_budget: Optional[float] = None, epochs: Optional[int] = None,
                    cfg_options: Optional[dict] = None, reuse: bool = False) -> list[dict]:
    """Train each config on ``data_root`` (``time_budget`` minutes / ``epochs`` each) and
    return the table rows in the order given."""
    if not Path(data_root).is_dir():
        raise UserError(f'--data-root {data_root} is not a folder; give the dataset root '
                        '(img/<split>, labels/<split>)')
    rows = []
    for config in configs:
        if not Path(config).is_file():
            raise UserError(f'{config}: config file not found')
        work_dir = Path(work_root) / Path(config).stem
        run_info = work_dir / RUN_INFO
        if reuse and run_info.is_file():
            info = dict(json.loads(run_info.read_text()), work_dir=str(work_dir))  # moved?
            print(f'{config}: reusing the finished run in {work_dir}', flush=True)
        else:
            start = time.perf_counter()
            cfg, info = build_train_cfg(config, work_dir=str(work_dir), data_root=str(data_root),
                                        epochs=epochs, cfg_options=cfg_options,
                                        time_budget=time_budget)
            info = train(cfg, info)
            print(f'{config}: trained in {(time.perf_counter() - start) / 60:.1f} min',
                  flush=True)
        rows.append(recipe_row(config, info))
    return rows


def recipes_markdown(rows: Sequence[dict], class_names: Optional[Sequence[str]] = None) -> str:
    """A markdown table of the rows (``class_names`` relabel the per-class columns)."""
    logged = list(dict.fromkeys(k for r in rows for k in (r.get('val_dice_per_class') or {})))
    names = list(class_names) if class_names else logged
    if class_names and len(class_names) != len(logged):
        raise UserError(f'--classes gives {len(class_names)} names, the runs logged '
                        f'{len(logged)} classes ({", ".join(logged)})')
    header = ['model', 'recipe', 'init', 'epochs', 'train min', 'val mDice', 'val mDice_fg',
              *[f'Dice {n}' for n in names], 'image class right']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    best = max((r.get('val_mdice') or 0 for r in rows), default=0)

    def fmt(v: Optional[float], bold: bool = False) -> str:
        text = '-' if v is None else f'{v:.4f}'
        return f'**{text}**' if bold and v is not None else text

    for r in rows:
        dice = r.get('val_dice_per_class') or {}
        cells = [r['model'], r['recipe'], r.get('init') or '-', str(r.get('epochs') or '-'),
                 '-' if r.get('train_min') is None else f"{r['train_min']:.1f}",
                 fmt(r.get('val_mdice'), r.get('val_mdice') == best), fmt(r.get('val_mdice_fg')),
                 *[fmt(dice.get(k)) for k in logged], fmt(r.get('val_img_class_acc'))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def write_recipes(rows: Sequence[dict], out: str | Path,
                  class_names: Optional[Sequence[str]] = None, title: str = '') -> dict:
    """``<out>.json`` (rows) and ``<out>.md`` (title + table); returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = dict(json=out.with_suffix('.json'), md=out.with_suffix('.md'))
    paths['json'].write_text(json.dumps(list(rows), indent=2) + '\n')
    text = (f'{title}\n\n' if title else '') + recipes_markdown(rows, class_names)
    paths['md'].write_text(text)
    return paths
