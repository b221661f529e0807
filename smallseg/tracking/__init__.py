"""ClearML tracking that never costs a run (docs/tracking.md): the mode and the run's task in
:mod:`.tracker`, what a Runner logs in :mod:`.hook`, the ClearML calls in :mod:`.session`."""
from . import hook  # noqa: F401  (registers SafeClearMLVisBackend, ClearMLHook)
from .session import CHECK_TIMEOUT_S
from .tracker import (ENV_MODE, MODES, TASK_FILE, Tracker, finish_tracking,
                      requested_mode, resolve_mode, set_mode, tracker_for)

__all__ = ['CHECK_TIMEOUT_S', 'ENV_MODE', 'MODES', 'TASK_FILE', 'Tracker',
           'finish_tracking', 'requested_mode', 'resolve_mode', 'set_mode', 'tracker_for']
