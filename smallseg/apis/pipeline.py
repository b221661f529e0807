"""The main job: default dataset -> train each model -> test each -> results.json."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.errors import UserError
from .results import read_results
from .robust import resolve_resume
from .test import (build_ensemble_test_cfg, build_test_cfg, evaluate, record_ensemble_results,
                   record_results)
from smallseg.tracking import finish_tracking
from ..utils.run_info import RUN_INFO
from .train import RUN_SETTINGS, SETTINGS_FILE, build_train_cfg, run_settings, train

DEFAULT_MODELS = ('configs/deeplabv3plus_r50.py', 'configs/unet_r34.py')


def ensure_default_dataset(data_root: Path, seed: int = 0) -> None:
    """Generate the embedded default dataset when ``data_root`` does not hold it yet."""
    from smallseg.synthetic import generate_dataset
    generate_dataset(data_root, seed=seed)


def find_best_checkpoint(work_dir: Path) -> Path:
    """The ``best_mDice_epoch_N.pth`` of a finished run (latest if several)."""
    found = sorted(work_dir.glob('best_*.pth'), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserError(f'no best_*.pth checkpoint in {work_dir}; did training finish?')
    return found[-1]


def changed_settings(work_dir: Path, cfg: Config) -> list[str]:
    """The :data:`RUN_SETTINGS` in which ``cfg`` differs from the run already in ``work_dir``
    (its ``train_settings.json``); empty when there is no such file or nothing differs."""
    saved = work_dir / SETTINGS_FILE
    if not saved.is_file():
        return []
    try:
        old = json.loads(saved.read_text())
    except (OSError, ValueError):  # unreadable: the run cannot be trusted to match
        return [SETTINGS_FILE]
    new = run_settings(cfg)
    return [key for key in RUN_SETTINGS if old.get(key) != new.get(key)]


def set_aside(work_dir: Path) -> Path:
    """Rename ``work_dir`` to ``<name>.previous_<time>`` (its checkpoints stay usable)."""
    moved = work_dir.with_name(f'{work_dir.name}.previous_{time.strftime("%Y%m%d_%H%M%S")}')
    try:
        work_dir.rename(moved)
    except OSError as exc:
        raise UserError(f'{work_dir} holds a run trained with other settings and could not be '
                        f'renamed to {moved.name} ({exc.strerror}); move it away yourself or '
                        'pass another --work-dir') from None
    last = moved / 'last_checkpoint'
    if last.is_file():  # it names a checkpoint by absolute path: follow the move
        last.write_text(str(moved.resolve() / Path(last.read_text().strip()).name))
    return moved


def _finished(work_dir: Path, max_epochs: Optional[int]) -> bool:
    """A run that ended: all its epochs, or as many as its time budget allowed (run_info.json
    is written when training returns, not when it is interrupted)."""
    info = work_dir / RUN_INFO
    if not info.is_file():
        return False
    data = json.loads(info.read_text())
    if data.get('time_budget_min') is not None:
        return data.get('epochs') is not None
    return data.get('epochs') is not None and data.get('epochs') == max_epochs


def run_main_job(configs: Sequence[str] = DEFAULT_MODELS, data_root: str = 'data/default',
                 work_root: str = 'work_dirs', results: str = 'results.json',
                 epochs: Optional[int] = None, amp: Optional[str] = None,
                 pretrained: Optional[str] = 'config', generate: bool = True,
                 analyse: bool = True, cfg_options: Optional[dict] = None,
                 seed: Optional[int] = None, deterministic: bool = False,
                 time_budget: Optional[float] = None) -> dict:
    """Train and test every config; skip finished runs, resume interrupted ones. A run
    trained with other settings (another recipe, ``epochs``, data root, seed or time budget)
    is renamed ``<name>.previous_<time>`` and the model trained anew. ``time_budget``:
    training minutes per model, the schedule fitted to them (tools/train.py --time-budget).

    With ``analyse``: error-analysis pictures in ``supplementary/viz/<model>/``, training
    curves next to the checkpoints and ``results/`` comparison tables, both beside the
    ``results`` file. With two or more models, their ensemble (mean class probabilities,
    :func:`evaluate_ensemble`) is scored on val and test as ``ensembles['ensemble']``.
    Returns the final results.json content.
    """
    root = Path(data_root)
    out_root = Path(results).parent  # results/ and supplementary/ go beside results.json
    if generate and not (root / 'img').is_dir():
        print_log(f'generating the default dataset in {root}', logger='current')
        ensure_default_dataset(root)
    start = time.perf_counter()
    trained: list[tuple[str, str]] = []
    for config in configs:
        name = Path(config).stem
        work_dir = Path(work_root) / name
        cfg, info = build_train_cfg(config, work_dir=str(work_dir), data_root=str(root),
                                    amp=amp, pretrained=pretrained, epochs=epochs,
                                    cfg_options=cfg_options, seed=seed,
                                    deterministic=deterministic, time_budget=time_budget)
        changed = changed_settings(work_dir, cfg)
        if changed:
            moved = set_aside(work_dir)
            print_log(f'{name}: the run in {work_dir} was trained with other settings '
                      f'({", ".join(changed)}); kept as {moved}, training anew',
                      logger='current')
        elif (work_dir / 'last_checkpoint').is_file():
            # an interrupted run resumes, with the same checks as tools/train.py --resume
            resumed = resolve_resume(cfg, True)
            if resumed:
                info['resumed_from'] = resumed
        if _finished(work_dir, cfg.train_cfg.max_epochs):
            print_log(f'{name}: finished run found in {work_dir}, not retraining',
                      logger='current')
        else:
            train(cfg, info)
        ckpt = find_best_checkpoint(work_dir)
        trained.append((str(config), str(ckpt)))
        test_cfg = build_test_cfg(config, ckpt, split='test', work_dir=str(work_dir),
                                  data_root=str(root), amp=amp, cfg_options=cfg_options)
        metrics = evaluate(test_cfg)
        record_results(results, name, 'test', metrics, config, ckpt)
        if analyse:
            analyse_model(config, ckpt, work_dir, str(root), cfg_options,
                          viz_root=out_root / 'supplementary' / 'viz')
        # the test metrics went to the training run's ClearML task: close it with the files
        finish_tracking({'results': results})
    evaluate_ensemble(trained, results, str(root), work_root, amp=amp, cfg_options=cfg_options)
    if analyse:
        from smallseg.analysis import write_comparison
        write_comparison(results, out_root / 'results')
    data = read_results(results)
    data_time = round(time.perf_counter() - start, 1)
    print_summary(data, data_time)
    return data


def evaluate_ensemble(pairs: Sequence[tuple[str, str]], results: str, data_root: str,
                      work_root: str = 'work_dirs', amp: Optional[str] = None,
                      cfg_options: Optional[dict] = None, name: str = 'ensemble') -> None:
    """Score the ensemble of the trained ``(config, checkpoint)`` pairs on val and test and
    record it in ``results`` as ``ensembles[name]``; one log line and nothing else with
    fewer than two models."""
    if len(pairs) < 2:
        print_log(f'{name}: skipped ({len(pairs)} model trained; an ensemble needs two)',
                  logger='current')
        return
    for split in ('val', 'test'):
        cfg = build_ensemble_test_cfg(pairs, split=split, work_dir=str(Path(work_root) / name),
                                      data_root=data_root, amp=amp, cfg_options=cfg_options)
        record_ensemble_results(results, name, split, evaluate(cfg), pairs)


def analyse_model(config: str, checkpoint: Path, work_dir: Path, data_root: str,
                  cfg_options: Optional[dict] = None,
                  viz_root: Path = Path('supplementary') / 'viz') -> None:
    """Error-analysis pictures (test split, in ``viz_root/<model>``) and training curves
    of one trained model."""
    from smallseg.analysis import plot_training_curves, run_error_analysis
    name = Path(config).stem
    run_error_analysis(config, checkpoint, viz_root / name,
                       data_root=data_root, split='test', cfg_options=cfg_options)
    plot_training_curves(work_dir, title=name)


def print_summary(data: dict, wall_time_s: float) -> None:
    """A short table of the results on stdout."""
    print(f"\n{'model':<22}{'val mDice':>10}{'test mDice':>11}{'epochs':>8}{'train s':>9}")
    rows = list(data['models'].items()) + list(data.get('ensembles', {}).items())
    for name, m in rows:
        val, test = m.get('val_mdice'), m.get('test_mdice')
        print(f"{name:<22}{val if val is not None else '-':>10}"
              f"{test if test is not None else '-':>11}{m.get('epochs') or '-':>8}"
              f"{m.get('wall_time_s') or '-':>9}")
    print(f"best: {data.get('best_model')} ({data.get('best_mdice')}), target "
          f"{data.get('target')} {'achieved' if data.get('target_achieved') else 'not achieved'}"
          f"; main job {wall_time_s:.0f} s")
