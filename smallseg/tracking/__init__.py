"""ClearML experiment tracking that never costs a run (docs/tracking.md).

Modes: 'auto' (online when credentials are configured and the server answers a login within
seconds, else offline), 'online', 'offline', 'off'; ``--clearml`` (:func:`set_mode`) >
``$SMALLSEG_CLEARML`` > the config's ``clearml.mode``. A run's task is a :class:`Tracker`;
mmengine's ClearML backend logs config, scalars and images into it (:mod:`.backend`),
:class:`~.hook.ClearMLHook` the rest.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from smallseg.utils.errors import UserError

from .server import CHECK_TIMEOUT_S, Server, bounded, check_server, find_server
from .tracker import TASK_FILE, Tracker

MODES = ('auto', 'online', 'offline', 'off')
ENV_MODE = 'SMALLSEG_CLEARML'
_cli_mode: Optional[str] = None
_current: Optional[Tracker] = None
__all__ = ['CHECK_TIMEOUT_S', 'ENV_MODE', 'MODES', 'TASK_FILE', 'Tracker', 'add_argument',
           'finish_tracking', 'requested_mode', 'resolve_mode', 'set_mode', 'tracker_for']


def set_mode(mode: Optional[str]) -> None:
    """The tools' ``--clearml`` flag: overrides the environment and the config (None: unset)."""
    global _cli_mode
    if mode is not None and mode not in MODES:
        raise UserError(f"--clearml must be one of {', '.join(MODES)}, got {mode!r}")
    _cli_mode = mode


def add_argument(parser: Any) -> None:
    """The tools' ``--clearml`` option (pass its value to :func:`set_mode`)."""
    parser.add_argument(
        '--clearml', choices=MODES, default=None,
        help="ClearML tracking: 'auto' (default, from the config's clearml.mode) = online when "
             "credentials are configured (clearml-init / CLEARML_API_*) and the server "
             "answers, else an offline session in <work_dir>/clearml/; 'off' = none")


def requested_mode(cfg_mode: Optional[str] = None) -> str:
    """The mode asked for: ``--clearml``, else ``$SMALLSEG_CLEARML``, else the config's."""
    mode = (_cli_mode or os.environ.get(ENV_MODE) or cfg_mode or 'auto').strip().lower()
    if mode not in MODES:
        raise UserError(f"clearml mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def resolve_mode(requested: str) -> tuple[str, Optional[Server], Optional[str]]:
    """``(mode, server, warning)``: 'online' (the server answered), 'offline' or 'off', and
    why an expected online run goes offline."""
    if requested in ('off', 'offline'):
        return requested, None, None
    try:
        server = find_server()
    except Exception as exc:  # noqa: BLE001 - a broken clearml.conf never stops a run
        return 'offline', None, f'cannot read the ClearML configuration ({exc})'
    if server is None:
        return 'offline', None, None if requested == 'auto' else (
            'online logging needs credentials (clearml-init, or CLEARML_API_HOST / '
            'CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY)')
    budget = 2 * CHECK_TIMEOUT_S + 1  # DNS, connect and read, whatever happens
    try:
        problem = bounded(lambda: check_server(server), budget, 'clearml-check')
    except TimeoutError:
        problem = f'did not answer in {budget:.0f} s'
    return ('offline', server, f'server {server.host} {problem}') if problem else (
        'online', server, None)


def tracker_for(cfg: Any) -> Tracker:
    """The tracker of the run configured by ``cfg`` (a Runner's config); a new run's config
    finishes the previous tracker first."""
    global _current
    if _current is None or _current.cfg is not cfg:
        if _current is not None:
            _current.finish()
        mode = (cfg.get('clearml', None) or {}).get('mode')
        _current = Tracker(cfg, lambda: resolve_mode(requested_mode(mode)))
    return _current


def finish_tracking(artifacts: Optional[dict[str, str | Path]] = None) -> None:
    """Close the latest run's task, uploading ``artifacts`` ({name: file}) first."""
    if _current is not None:
        _current.finish(artifacts)


from . import backend, hook  # noqa: E402,F401  (registers SafeClearMLVisBackend, ClearMLHook)
