"""Training entry point used by tools/train.py and the main job."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from smallseg.engine.atomic_io import atomic_write
from smallseg.hooks.time_budget_hook import RECORD_KEY, mean_step_s

from .config import (check_data_root, configure_amp, configure_launcher, configure_workers,
                     default_work_dir, load_config, set_data_root, set_max_epochs)
from .cfg_check import check_num_classes
from .class_weights import resolve_class_weights
from .object_prior import resolve_object_prior
from ..utils.checkpoint import epoch_from_name
from ..utils.errors import UserError
from ..utils.run_info import RUN_INFO, device_name
from .pretrained import init_line, resolve_pretrained
from .results import recipe_settings
from .robust import (check_epochs, check_work_dir, clean_stale_temporaries, configure_randomness,
                     resolve_resume)
from smallseg.tracking import finish_tracking
from .validate import ValidationReport, validate_dataset

def build_train_cfg(config: str | Path, work_dir: Optional[str] = None,
                    data_root: Optional[str] = None, resume: bool = False,
                    amp: Optional[str] = None, pretrained: Optional[str] = 'config',
                    epochs: Optional[int] = None, cfg_options: Optional[dict] = None,
                    launcher: str = 'none', seed: Optional[int] = None,
                    deterministic: bool = False, validate: bool = True,
                    skip_invalid: bool = False,
                    time_budget: Optional[float] = None) -> tuple[Config, dict]:
    """Load ``config`` and apply the command-line choices of tools/train.py.

    Returns the config and a ``run_info`` dict (config, init, precision) for the work dir.
    ``amp``/``pretrained`` None or 'config' mean: use the config's ``amp``/``pretrained``.
    Before anything is built the data is validated (:mod:`.validate`; ``skip_invalid`` leaves
    the unusable pairs out; a train split smaller than one batch stops the run), the work dir
    must be writable and a ``resume`` checkpoint must
    match the model (:mod:`.robust`); ``seed``/``deterministic`` set mmengine's randomness.
    ``class_weight='auto'`` in a loss becomes the training masks' median-frequency weights,
    ``'auto'`` in ``model.test_cfg`` the one-object prior's decision (:mod:`.object_prior`);
    ``time_budget`` (minutes) fits max_epochs and the LR decay to it (:class:`TimeBudgetHook`).
    """
    cfg = load_config(config, cfg_options)
    recipe = recipe_settings(cfg)  # as written, before the run's choices and resolutions
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    set_data_root(cfg, data_root)
    check_data_root(cfg, ('train_dataloader', 'val_dataloader'))
    check_epochs(epochs)
    check_num_classes(cfg)
    set_max_epochs(cfg, None if epochs is None else int(epochs))
    report = validate_dataset(cfg, skip_invalid=skip_invalid) if validate else None
    if report is not None:
        check_train_batch(cfg, report)
    class_weight = resolve_class_weights(cfg)
    object_prior = resolve_object_prior(cfg)
    if time_budget is not None:
        if not time_budget > 0:
            raise UserError(f'--time-budget must be a positive number of minutes, got '
                            f'{time_budget}')
        val_from = float(cfg.get('time_budget_val_from') or 0.0)
        if not 0.0 <= val_from < 1.0:
            raise UserError(f'time_budget_val_from must be at least 0 and below 1 (the share '
                            f'of the run before validation resumes), got {val_from}')
        cfg.custom_hooks = [*(cfg.get('custom_hooks') or []),
                            dict(type='TimeBudgetHook', minutes=float(time_budget),
                                 val_from=val_from)]
        cfg.time_budget_min = float(time_budget)  # a run setting (train_settings.json)
    if time_budget is None or not cfg.get('time_budget_val_from'):
        cfg.pop('time_budget_val_from', None)  # a run setting only where it changes the run
    seed = configure_randomness(cfg, seed, deterministic)
    precision = configure_amp(cfg, amp or cfg.get('amp', 'auto'))
    init = resolve_pretrained(
        cfg, cfg.get('pretrained', 'auto') if pretrained == 'config' else pretrained)
    configure_workers(cfg)
    configure_launcher(cfg, launcher)
    check_work_dir(cfg.work_dir)
    clean_stale_temporaries(cfg.work_dir)  # a kill -9 during a save leaves <file>.tmp<pid>
    resumed = resolve_resume(cfg, resume)
    info = dict(config=str(config), data_root=cfg.get('data_root'), precision=precision,
                init=init, max_epochs=cfg.train_cfg.get('max_epochs'), seed=seed,
                deterministic=bool(deterministic), recipe=recipe)
    if class_weight is not None:
        info['class_weight'] = class_weight
    if object_prior is not None:
        info['object_prior'] = object_prior
    if time_budget is not None:
        info['time_budget_min'] = float(time_budget)
    if resumed:
        info['resumed_from'] = resumed
    if report is not None and report.dropped:
        info['dropped_pairs'] = report.dropped
    return cfg, info


def check_train_batch(cfg: Config, report: ValidationReport) -> None:
    """Stop with one line when the train split holds fewer usable pairs than one batch: the
    train dataloader drops a short last batch (``drop_last``), so no iteration would run."""
    loader = cfg.train_dataloader
    batch = int(loader.get('batch_size') or 1)
    check = next((c for c in report.checks if c.loader == 'train_dataloader'), None)
    if loader.get('drop_last') and check is not None and 0 < check.valid < batch:
        raise UserError(
            f'the train split has {check.valid} usable image/mask pairs, fewer than '
            f'train_dataloader.batch_size {batch} (a short batch is dropped, so nothing would '
            f'train); add images or pass --cfg-options train_dataloader.batch_size='
            f'{check.valid}')


# what makes a run in a work dir a different run: resuming or reusing it would mix recipes
RUN_SETTINGS = ('model', 'train_cfg', 'optim_wrapper', 'param_scheduler', 'img_size',
                'data_root', 'randomness', 'time_budget_min', 'time_budget_val_from')
SETTINGS_FILE = 'train_settings.json'


def run_settings(cfg: Config) -> dict:
    """The :data:`RUN_SETTINGS` of ``cfg`` as plain JSON values (tuples read as lists)."""
    return json.loads(json.dumps({key: cfg.get(key) for key in RUN_SETTINGS}, sort_keys=True,
                                 default=str))


def train(cfg: Config, info: Optional[dict] = None) -> dict:
    """Build mmengine's Runner from ``cfg``, train, and write ``<work_dir>/run_info.json``
    (and, first, ``train_settings.json``: what the main job compares a rerun against).

    Returns the run info with the best checkpoint, its val score, the wall time, the epochs
    run (``epochs``), the mean train step time (``mean_step_s``, data loading included) and,
    under a time budget, ``time_budget``: its minutes and the epochs planned, fitted and run
    (:class:`~smallseg.hooks.TimeBudgetHook`).
    """
    info = dict(info or {})
    runner = Runner.from_cfg(cfg)
    work_dir = Path(runner.work_dir)
    info.update(device=device_name(), started=time.strftime('%Y-%m-%d %H:%M:%S'))
    if info.get('init'):  # what the encoder starts from, in the run's log too
        runner.logger.info(init_line(info['init']))
    if runner.rank == 0:  # before training, so an interrupted run has it too
        atomic_write(work_dir / SETTINGS_FILE, json.dumps(run_settings(cfg), indent=1))
    start = time.perf_counter()
    runner.train()
    hub = runner.message_hub
    best_ckpt = hub.get_info('best_ckpt')
    info.update(
        wall_time_s=round(time.perf_counter() - start, 1),
        epochs=runner.epoch,
        best_checkpoint=str(best_ckpt) if best_ckpt else None,
        best_val_mdice=(round(hub.get_info('best_score') / 100.0, 4)
                        if hub.get_info('best_score') is not None else None),
        best_epoch=epoch_from_name(best_ckpt),
        mean_step_s=mean_step_s(runner),
        work_dir=str(work_dir))
    if hub.get_info(RECORD_KEY):
        info['time_budget'] = dict(hub.get_info(RECORD_KEY))
    if runner.rank == 0:
        atomic_write(work_dir / RUN_INFO, json.dumps(info, indent=2))
        finish_tracking()  # close the ClearML task with run_info.json as an artifact
    if runner.world_size > 1:
        print(f'rank {runner.rank}/{runner.world_size}: finished {runner.epoch} epochs',
              flush=True)
    return info

