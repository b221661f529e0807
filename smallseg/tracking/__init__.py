"""ClearML experiment tracking that never costs a run (docs/tracking.md).

Mode: ``--clearml`` (:func:`set_mode`) > ``$SMALLSEG_CLEARML`` > the config's ``clearml.mode``.
A run's task is a :class:`Tracker` (:mod:`.tracker`); :mod:`.hook` logs into it (mmengine's
ClearML backend: config, scalars, images; :class:`~.hook.ClearMLHook`: the rest); :mod:`.session`
holds the ClearML calls.
"""
from . import hook  # noqa: F401  (registers SafeClearMLVisBackend, ClearMLHook)
from .session import CHECK_TIMEOUT_S
from .tracker import (ENV_MODE, MODES, TASK_FILE, Tracker, add_argument, finish_tracking,
                      requested_mode, resolve_mode, set_mode, tracker_for)

__all__ = ['CHECK_TIMEOUT_S', 'ENV_MODE', 'MODES', 'TASK_FILE', 'Tracker', 'add_argument',
           'finish_tracking', 'requested_mode', 'resolve_mode', 'set_mode', 'tracker_for']
