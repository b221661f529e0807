"""Recipe comparison: train several configs on one dataset and tabulate their best val epoch.

Each config trains into ``<work_root>/<config name>`` (an existing finished run is reused with
``reuse=True``); a row holds the model, the recipe (``*_seed`` configs: the seed report's), the
epochs trained, the training minutes (validation included), and at the best val epoch mDice,
mDice_fg, the Dice of each class and the share of images given their true class (DiceMetric's
``img_class_acc``), read from the run's logs.

With ``seeds`` (and/or ``folds``, ``seed``) each config trains several times, into
``<work_root>/<config name>_s<seed>`` (K-fold: ``<config name>_f<i>of<K>_s<seed>``), and a
row holds the mean, standard deviation (n - 1) and worst of val mDice, mDice_fg and
``img_class_acc`` over the runs, the range of their best epochs and, under ``runs``, each
run's seed, fold, best epoch, scores, epochs run, wall time and time-budget record.
``folds=K`` trains run i on fold i of a K-fold split of train+val (:mod:`.folds`) with seed
``base + i``: seeds and folds pair up, K runs per config. Options given to every config
(``cfg_options``) are named in the recipe column.

With ``ensemble=True`` the configs' runs are also scored together, run by run (the same seed
and fold): the ensemble of their best checkpoints (mean class probabilities,
:func:`.test.build_ensemble_test_cfg`) on that run's val split, into
``<work_root>/ensemble[_f<i>of<K>][_s<seed>]``. Its row holds the same scores and, per run,
the gain over the better member.
"""
from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path
from typing import Optional, Sequence

from ..analysis.curves import read_curves
from ..utils.errors import UserError
from ..utils.run_info import RUN_INFO
from .config import load_config, set_data_root
from .folds import fold_options, write_folds
from .pipeline import find_best_checkpoint
from .robust import find_resume_checkpoint
from .test import build_ensemble_test_cfg, evaluate
from .train import build_train_cfg, train
from .validate import validate_dataset

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
               device=info.get('device'), work_dir=_shown_path(work_dir))
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


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory where it lies below it (a table written
    into the repository then names no machine's folders), else absolute."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(float(value), 4)


def compare_recipes(configs: Sequence[str | Path], data_root: str | Path, work_root: str | Path,
                    time_budget: Optional[float] = None, epochs: Optional[int] = None,
                    cfg_options: Optional[dict] = None, reuse: bool = False,
                    seeds: Optional[int] = None, seed: Optional[int] = None,
                    folds: Optional[int] = None, ensemble: bool = False) -> list[dict]:
    """Train each config on ``data_root`` (``time_budget`` minutes / ``epochs`` each) and
    return the table rows in the order given.

    ``seeds`` N (or a base ``seed``, or ``folds`` K) trains each config several times: seeds
    ``seed``, ``seed + 1``... (``seed`` None: a drawn base, printed and recorded) and returns
    one aggregated row per config (:func:`aggregate_runs`). ``folds`` K makes K runs, run i on
    fold i (:mod:`.folds`, split with the base seed); ``seeds``, if given, must then be K.
    ``reuse`` takes the finished runs found in the work dirs (with a drawn seed: any finished
    ``<config>_s*`` run, and the K-fold split already written) and resumes unfinished ones
    from their last checkpoint. ``ensemble`` adds the row of the configs' ensemble
    (:func:`ensemble_row`), last."""
    if ensemble and len(configs) < 2:
        raise UserError(f'--ensemble scores the configs together: give two or more configs '
                        f'(got {len(configs)})')
    if not Path(data_root).is_dir():
        raise UserError(f'--data-root {data_root} is not a folder; give the dataset root '
                        '(img/<split>, labels/<split>)')
    for config in configs:
        if not Path(config).is_file():
            raise UserError(f'{config}: config file not found')
    options = dict(time_budget=time_budget, epochs=epochs, cfg_options=cfg_options)
    if seeds is None and seed is None and folds is None:
        infos = [_train_or_reuse(config, Path(work_root) / Path(config).stem, data_root, reuse,
                                 **options) for config in configs]
        rows = [with_options(recipe_row(config, info), cfg_options)
                for config, info in zip(configs, infos)]
        if ensemble:
            rows.append(ensemble_row(configs, [[info] for info in infos], rows, data_root,
                                     Path(work_root), cfg_options, [None], [None],
                                     reuse=reuse))
        return rows
    if seeds is not None and seeds < 1:
        raise UserError(f'--seeds must be 1 or more, got {seeds}')
    if folds is not None and seeds is not None and seeds != folds:
        raise UserError(f'--folds {folds} trains run i on fold i with seed i: give --seeds '
                        f'{folds} or leave --seeds out (got --seeds {seeds})')
    runs_n = folds or seeds or 1
    work_root = Path(work_root)
    fold_lists: list[Optional[dict]] = [None] * runs_n
    if folds is not None:
        if seed is None and reuse:
            seed = _written_fold_seed(work_root, folds)
        if seed is None:
            seed = _draw_seed()
            print(f'--folds {folds}: split and seeds from the drawn seed {seed}', flush=True)
        fold_lists = _make_folds(configs[0], data_root, folds, seed, work_root, cfg_options)
    rows, infos, run_seeds = [], [], []
    for config in configs:
        stem = Path(config).stem
        if folds is not None:
            plan = [(seed + i, work_root / f'{stem}_f{i}of{folds}_s{seed + i}')
                    for i in range(folds)]
        else:
            plan = _seed_plan(stem, work_root, runs_n, seed, reuse)
        runs, infos_of_config = [], []
        for i, (run_seed, work_dir) in enumerate(plan):
            run_options = dict(options)
            if fold_lists[i] is not None:
                run_options['cfg_options'] = {**(cfg_options or {}),
                                              **fold_options(fold_lists[i])}
            info = _train_or_reuse(config, work_dir, data_root, reuse, seed=run_seed,
                                   **run_options)
            runs.append(run_record(recipe_row(config, info), info, run_seed,
                                   None if folds is None else i))
            infos_of_config.append(info)
        infos.append(infos_of_config)
        run_seeds = [run_seed for run_seed, _ in plan]
        rows.append(with_options(aggregate_runs(
            config, runs, folds=folds, fold_seed=seed if folds is not None else None),
            cfg_options))
    if ensemble:
        rows.append(ensemble_row(configs, infos, rows, data_root, work_root, cfg_options,
                                 fold_lists, run_seeds, folds=folds, fold_seed=seed,
                                 reuse=reuse))
    return rows


def with_options(row: dict, cfg_options: Optional[dict]) -> dict:
    """The row with the ``--cfg-options`` its runs trained with: under ``cfg_options`` and
    in the recipe name after a ``+`` (``default + model.backbone.type=ResNetV1c``), so a table
    says what each row changed."""
    if not cfg_options:
        return row
    text = ' '.join(f'{key}={value}' for key, value in cfg_options.items())
    return dict(row, recipe=f"{row['recipe']} + {text}", cfg_options=dict(cfg_options))


ENSEMBLE_FILE = 'ensemble_val.json'


def _ensemble_metrics(pairs: list[tuple[str, str]], work_dir: Path, data_root: str | Path,
                      cfg_options: Optional[dict], reuse: bool) -> dict:
    """Val metrics of the ensemble of ``pairs``, written to ``work_dir/ensemble_val.json``
    with a per-image CSV beside it; with ``reuse``, read from there when the members match."""
    record = work_dir / ENSEMBLE_FILE
    members = [list(pair) for pair in pairs]
    if reuse and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get('members') == members:
            print(f'ensemble: reusing {record}', flush=True)
            return saved['metrics']
    cfg = build_ensemble_test_cfg(pairs, split='val', work_dir=str(work_dir),
                                  data_root=str(data_root), cfg_options=cfg_options,
                                  csv_path=work_dir / 'val_per_image.csv')
    metrics = evaluate(cfg)
    record.write_text(json.dumps(dict(members=members, metrics=metrics), indent=1) + '\n')
    return metrics


def ensemble_row(configs: Sequence[str | Path], infos: Sequence[Sequence[dict]],
                 rows: Sequence[dict], data_root: str | Path, work_root: Path,
                 cfg_options: Optional[dict], fold_lists: Sequence[Optional[dict]],
                 run_seeds: Sequence[Optional[int]], folds: Optional[int] = None,
                 fold_seed: Optional[int] = None, reuse: bool = False) -> dict:
    """The row of the configs' ensemble: for run i, the best checkpoints of every config's
    run i (``infos[config][i]``) scored together on run i's val split (fold i's with
    ``folds``); each run records its members' val mDice (``rows``) and the ensemble's gain
    over the better one. Rows of several runs give an :func:`aggregate_runs` row. ``reuse``
    takes the scores written by an earlier call for the same checkpoints."""
    work_root = Path(work_root)
    names = [recipe_of(config) for config in configs]
    recipe = ' + '.join(model if kind == 'default' else f'{model} ({kind})'
                        for model, kind in names)
    seeded = all('runs' in r for r in rows)
    runs = []
    for i, seed in enumerate(run_seeds):
        pairs = [(str(config), str(find_best_checkpoint(Path(runs_of[i]['work_dir']))))
                 for config, runs_of in zip(configs, infos)]
        options = dict(cfg_options or {})
        if fold_lists[i] is not None:
            options.update(fold_options(fold_lists[i]))
        name = 'ensemble' + (f'_f{i}of{folds}' if folds else '') + (
            f'_s{seed}' if seed is not None else '')
        work_dir = work_root / name
        work_dir.mkdir(parents=True, exist_ok=True)
        metrics = _ensemble_metrics(pairs, work_dir, data_root, options or None, reuse)
        member_scores = [(r['runs'][i] if seeded else r).get('val_mdice') for r in rows]
        found = [v for v in member_scores if v is not None]
        score = _round(metrics.get('mDice'))
        runs.append(dict(
            seed=seed, fold=None if folds is None else i, work_dir=_shown_path(work_dir),
            member_seeds=[runs_of[i].get('seed') for runs_of in infos],
            members=[config for config, _ in pairs],
            checkpoints=[_shown_path(Path(c)) for _, c in pairs],
            member_val_mdice=member_scores, val_mdice=score,
            val_mdice_fg=_round(metrics.get('mDice_fg')),
            val_img_class_acc=_round(metrics.get('img_class_acc')),
            val_dice_per_class={k[5:]: _round(v) for k, v in metrics.items()
                                if k.startswith('Dice.')},
            gain=_round(score - max(found)) if found and score is not None else None,
            best_epoch=None, epochs=None, train_min=None, init=None, device=None))
    if not seeded:
        return with_options(dict(model='ensemble', recipe=recipe, config=None, **{
            k: v for k, v in runs[0].items() if k not in ('seed', 'fold')}), cfg_options)
    row = aggregate_runs('ensemble', runs, folds=folds, fold_seed=fold_seed)
    gains = spread([r['gain'] for r in runs])
    return with_options(dict(row, model='ensemble', recipe=recipe, config=None,
                             gain_mean=gains['mean'], gain_worst=gains['worst']), cfg_options)


def _train_or_reuse(config: str | Path, work_dir: Path, data_root: str | Path, reuse: bool,
                    seed: Optional[int] = None, **options) -> dict:
    """The run_info of ``work_dir``'s finished run (``reuse``), else of a run trained there
    (resumed from its last checkpoint with ``reuse`` when one is left)."""
    run_info = work_dir / RUN_INFO
    if reuse and run_info.is_file():
        print(f'{config}: reusing the finished run in {work_dir}', flush=True)
        return dict(json.loads(run_info.read_text()), work_dir=str(work_dir))  # moved?
    resume = reuse and work_dir.is_dir() and find_resume_checkpoint(work_dir) is not None
    start = time.perf_counter()
    cfg, info = build_train_cfg(config, work_dir=str(work_dir), data_root=str(data_root),
                                seed=seed, resume=resume, **options)
    info = train(cfg, info)
    print(f'{config}: trained in {(time.perf_counter() - start) / 60:.1f} min'
          + (f' (seed {seed}, {work_dir})' if seed is not None else ''), flush=True)
    return info


def _draw_seed() -> int:
    return random.SystemRandom().randrange(2 ** 30)


def _seed_plan(stem: str, work_root: Path, n: int, seed: Optional[int],
               reuse: bool) -> list[tuple[int, Path]]:
    """``(seed, work dir)`` of the ``n`` runs of a config: seeds ``seed + i``; with no seed,
    first the finished runs found (``reuse``), then seeds from a drawn base."""
    if seed is not None:
        return [(seed + i, work_root / f'{stem}_s{seed + i}') for i in range(n)]
    plan: list[tuple[int, Path]] = []
    if reuse and work_root.is_dir():
        pattern = re.compile(rf'{re.escape(stem)}_s(\d+)')
        for path in sorted(work_root.iterdir()):
            match = pattern.fullmatch(path.name)
            if match and (path / RUN_INFO).is_file() and len(plan) < n:
                plan.append((int(match.group(1)), path))
    base = _draw_seed()
    taken = {s for s, _ in plan}
    while len(plan) < n:
        if base not in taken:
            plan.append((base, work_root / f'{stem}_s{base}'))
        base += 1
    return plan


def _written_fold_seed(work_root: Path, k: int) -> Optional[int]:
    """The seed of the one K-fold split already written under ``work_root`` (None: none or
    several)."""
    found = sorted(work_root.glob(f'folds_k{k}_s*')) if work_root.is_dir() else []
    seeds = [int(p.name.rsplit('_s', 1)[1]) for p in found
             if re.fullmatch(rf'folds_k{k}_s\d+', p.name)]
    return seeds[0] if len(seeds) == 1 else None


def _make_folds(config: str | Path, data_root: str | Path, k: int, seed: int,
                work_root: Path, cfg_options: Optional[dict]) -> list[dict]:
    """Check train and val as a training run does, then write the K-fold split lists into
    ``<work_root>/folds_k<K>_s<seed>`` (the file names of ``config``'s dataset)."""
    cfg = load_config(config, cfg_options)
    set_data_root(cfg, data_root)
    validate_dataset(cfg, verbose=False)  # the fold runs' lists are not scanned again
    ds = cfg.train_dataloader.dataset
    return write_folds(data_root, k, seed, work_root / f'folds_k{k}_s{seed}',
                       img_suffix=ds.get('img_suffix', '.jpg'),
                       seg_map_suffix=ds.get('seg_map_suffix', '.png'),
                       ignore_index=ds.get('ignore_index', 255))


SCORES = ('val_mdice', 'val_mdice_fg', 'val_img_class_acc')


def run_record(row: dict, info: dict, seed: int, fold: Optional[int] = None) -> dict:
    """One run of a seeded table: seed, fold, best epoch, scores, epochs run, wall time."""
    return dict(seed=seed, fold=fold, work_dir=row['work_dir'], best_epoch=row['best_epoch'],
                epochs=row['epochs'], wall_time_s=info.get('wall_time_s'),
                train_min=row['train_min'], init=row['init'], device=row['device'],
                **{key: row.get(key) for key in SCORES},
                val_dice_per_class=row.get('val_dice_per_class') or {},
                mean_step_s=info.get('mean_step_s'), time_budget=info.get('time_budget'))


def spread(values: Sequence[Optional[float]]) -> dict:
    """``mean``, ``std`` (sample, n - 1; None for one value) and ``worst`` (the lowest) of
    the values given (None ones left out; all None: all None)."""
    found = [float(v) for v in values if v is not None]
    if not found:
        return dict(mean=None, std=None, worst=None)
    mean = sum(found) / len(found)
    std = (math.sqrt(sum((v - mean) ** 2 for v in found) / (len(found) - 1))
           if len(found) > 1 else None)
    return dict(mean=_round(mean), std=_round(std), worst=_round(min(found)))


def aggregate_runs(config: str | Path, runs: Sequence[dict], folds: Optional[int] = None,
                   fold_seed: Optional[int] = None) -> dict:
    """The table row of a config's runs (:func:`run_record`): ``<score>_mean``, ``_std``,
    ``_worst`` for each of :data:`SCORES`, the best epochs' and epochs' ranges, the mean
    training minutes and per-class Dice, and ``runs``."""
    model, recipe = recipe_of(config)
    row = dict(model=model, recipe=recipe, config=str(config), runs_n=len(runs), folds=folds,
               fold_seed=fold_seed, seeds=[r['seed'] for r in runs],
               init=runs[0]['init'] if runs else None,
               device=runs[0]['device'] if runs else None)
    for key in SCORES:
        for stat, value in spread([r.get(key) for r in runs]).items():
            row[f'{key}_{stat}'] = value
    for key in ('best_epoch', 'epochs'):
        found = [r[key] for r in runs if r.get(key) is not None]
        row[f'{key}_min'] = min(found) if found else None
        row[f'{key}_max'] = max(found) if found else None
    minutes = [r['train_min'] for r in runs if r.get('train_min') is not None]
    row['train_min_mean'] = round(sum(minutes) / len(minutes), 1) if minutes else None
    classes = list(dict.fromkeys(k for r in runs for k in r.get('val_dice_per_class') or {}))
    row['val_dice_per_class_mean'] = {
        k: spread([(r.get('val_dice_per_class') or {}).get(k) for r in runs])['mean']
        for k in classes}
    budgets = [r['time_budget']['minutes'] for r in runs if r.get('time_budget')]
    row['time_budget_min'] = budgets[0] if budgets else None
    row['runs'] = list(runs)
    return row


def _class_columns(rows: Sequence[dict], key: str,
                   class_names: Optional[Sequence[str]]) -> tuple[list[str], list[str]]:
    """The logged class keys and the names their columns show (``class_names`` relabel)."""
    logged = list(dict.fromkeys(k for r in rows for k in (r.get(key) or {})))
    if class_names and len(class_names) != len(logged):
        raise UserError(f'--classes gives {len(class_names)} names, the runs logged '
                        f'{len(logged)} classes ({", ".join(logged)})')
    return logged, list(class_names) if class_names else logged


def _fmt(v: Optional[float], bold: bool = False) -> str:
    text = '-' if v is None else f'{v:.4f}'
    return f'**{text}**' if bold and v is not None else text


def _range(low: Optional[int], high: Optional[int]) -> str:
    if low is None:
        return '-'
    return str(low) if low == high else f'{low}-{high}'


def _signed(v: Optional[float]) -> str:
    return '-' if v is None else f'{v:+.4f}'


def gain_lines(rows: Sequence[dict]) -> str:
    """Under a table with an ensemble row: its val mDice against its better member's, run
    by run (empty without one)."""
    lines = []
    for r in rows:
        if r.get('model') != 'ensemble':
            continue
        if 'runs' in r:
            each = ', '.join(_signed(run.get('gain')) for run in r['runs'])
            lines.append(f"Ensemble ({r['recipe']}) against its better member, val mDice run "
                         f"by run: {each} (mean {_signed(r.get('gain_mean'))}, worst "
                         f"{_signed(r.get('gain_worst'))}).")
        else:
            lines.append(f"Ensemble ({r['recipe']}) against its better member, val mDice: "
                         f"{_signed(r.get('gain'))}.")
    return ''.join(f'\n{line}\n' for line in lines)


def recipes_markdown(rows: Sequence[dict], class_names: Optional[Sequence[str]] = None) -> str:
    """A markdown table of the rows (``class_names`` relabel the per-class columns); rows of
    several runs (:func:`aggregate_runs`) give :func:`seeded_markdown`'s table. An ensemble
    row adds a line with its gain over its better member (:func:`gain_lines`)."""
    return _table(rows, class_names) + gain_lines(rows)


def _table(rows: Sequence[dict], class_names: Optional[Sequence[str]] = None) -> str:
    if rows and all('runs' in r for r in rows):
        return seeded_markdown(rows, class_names)
    logged, names = _class_columns(rows, 'val_dice_per_class', class_names)
    header = ['model', 'recipe', 'init', 'epochs', 'train min', 'val mDice', 'val mDice_fg',
              *[f'Dice {n}' for n in names], 'image class right']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    best = max((r.get('val_mdice') or 0 for r in rows), default=0)
    for r in rows:
        dice = r.get('val_dice_per_class') or {}
        cells = [r['model'], r['recipe'], r.get('init') or '-', str(r.get('epochs') or '-'),
                 '-' if r.get('train_min') is None else f"{r['train_min']:.1f}",
                 _fmt(r.get('val_mdice'), r.get('val_mdice') == best), _fmt(r.get('val_mdice_fg')),
                 *[_fmt(dice.get(k)) for k in logged], _fmt(r.get('val_img_class_acc'))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def seeded_markdown(rows: Sequence[dict], class_names: Optional[Sequence[str]] = None) -> str:
    """The table of configs trained several times: runs, epochs run (range), mean training
    minutes, mean / std / worst of val mDice, mDice_fg and image class right, the mean Dice of
    each class, and the range of the best epochs; the best mean val mDice in bold."""
    logged, names = _class_columns(rows, 'val_dice_per_class_mean', class_names)
    labels = dict(val_mdice='val mDice', val_mdice_fg='val mDice_fg',
                  val_img_class_acc='image class right')
    header = ['model', 'recipe', 'init', 'runs', 'epochs', 'train min']
    for key in SCORES[:2]:
        header += [f'{labels[key]} {stat}' for stat in ('mean', 'std', 'worst')]
    header += [f'Dice {n} mean' for n in names]
    header += [f'image class right {stat}' for stat in ('mean', 'std', 'worst')]
    header += ['best epoch']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    best = max((r.get('val_mdice_mean') or 0 for r in rows), default=0)
    for r in rows:
        dice = r.get('val_dice_per_class_mean') or {}
        cells = [r['model'], r['recipe'], r.get('init') or '-',
                 str(r['runs_n']) + (f" (folds {r['folds']})" if r.get('folds') else ''),
                 _range(r.get('epochs_min'), r.get('epochs_max')),
                 '-' if r.get('train_min_mean') is None else f"{r['train_min_mean']:.1f}"]
        for key in SCORES[:2]:
            cells += [_fmt(r.get(f'{key}_mean'), key == 'val_mdice'
                           and r.get(f'{key}_mean') == best),
                      _fmt(r.get(f'{key}_std')), _fmt(r.get(f'{key}_worst'))]
        cells += [_fmt(dice.get(k)) for k in logged]
        cells += [_fmt(r.get(f'val_img_class_acc_{stat}')) for stat in ('mean', 'std', 'worst')]
        cells += [_range(r.get('best_epoch_min'), r.get('best_epoch_max'))]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def relabel_classes(rows: Sequence[dict],
                    class_names: Optional[Sequence[str]] = None) -> list[dict]:
    """Copies of the rows whose per-class Dice (``val_dice_per_class``, ``_mean`` and each
    run's) are keyed by ``class_names``, as the table's columns are (the config's names for
    a dataset whose own names the config does not hold)."""
    if not class_names:
        return list(rows)
    seeded = bool(rows) and all('runs' in r for r in rows)
    logged, shown = _class_columns(
        rows, 'val_dice_per_class_mean' if seeded else 'val_dice_per_class', class_names)
    names = dict(zip(logged, shown))

    def renamed(record: dict) -> dict:
        record = dict(record)
        for key in ('val_dice_per_class', 'val_dice_per_class_mean'):
            if record.get(key):
                record[key] = {names.get(k, k): v for k, v in record[key].items()}
        if 'runs' in record:
            record['runs'] = [renamed(run) for run in record['runs']]
        return record

    return [renamed(r) for r in rows]


def write_recipes(rows: Sequence[dict], out: str | Path,
                  class_names: Optional[Sequence[str]] = None, title: str = '') -> dict:
    """``<out>.json`` (rows) and ``<out>.md`` (title + table); returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = dict(json=out.with_suffix('.json'), md=out.with_suffix('.md'))
    paths['json'].write_text(json.dumps(relabel_classes(rows, class_names), indent=2) + '\n')
    text = (f'{title}\n\n' if title else '') + recipes_markdown(rows, class_names)
    paths['md'].write_text(text)
    return paths
