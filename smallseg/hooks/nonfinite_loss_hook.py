"""Stop training at the first NaN/inf loss, before anything is saved from the broken weights."""
from __future__ import annotations

import math
from pathlib import Path

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from smallseg.utils.errors import UserError

from .safe_checkpoint_hook import LAST_CHECKPOINT


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` when the loss (or a loss term) is NaN or infinite.

    It runs first after every train iteration (priority 'VERY_HIGH'), so no checkpoint is
    written from the diverged weights: the last good one stays what ``last_checkpoint`` names.
    With fp16 loss scaling, an inf *gradient* is normal and skipped by the scaler; only the
    loss value is checked here.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        values = {k: v.detach() if hasattr(v, 'detach') else v for k, v in outputs.items()
                  if k.startswith('loss') or k.endswith('loss') or '.loss' in k}
        bad = {k: float(v) for k, v in values.items()
               if _is_number(v) and not math.isfinite(float(v))}
        if not bad:
            return
        name, value = next(iter(bad.items()))
        last = Path(runner.work_dir) / LAST_CHECKPOINT
        ckpt = last.read_text().strip() if last.is_file() else ''
        kept = (f'the last good checkpoint {ckpt} is unchanged (continue from it with --resume)'
                if ckpt else 'no checkpoint was saved yet')
        raise NonFiniteLossError(
            f'{name} became {value} in epoch {runner.epoch + 1}, iteration {batch_idx + 1} '
            f'(global {runner.iter + 1}); training stopped and {kept}. Lower the learning rate '
            '(--cfg-options optim_wrapper.optimizer.lr=...), train with --no-amp, or check the '
            'labels (python eda/run_eda.py)')


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError, RuntimeError):
        return False
    return True
