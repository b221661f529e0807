"""The ClearML calls behind :mod:`.tracking`: opening and closing a task, the logging
operations its journal replays (``OPS``), and the run's environment (git, pip, machine).

Everything here may block or raise; :mod:`.tracking` runs it with a time budget.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .tracking_server import CHECK_TIMEOUT_S, HTTP_RETRIES, bounded

REPO = Path(__file__).resolve().parents[2]
REPO_DETECTION_WAIT_S = 20.0  # offline: ClearML's repository and requirements scan, once per task
# nothing is patched: checkpoints, plots and arguments are logged explicitly by smallseg
FRAMEWORKS_OFF = {name: False for name in (
    'pytorch', 'matplotlib', 'tensorflow', 'tensorboard', 'tfdefines', 'hydra', 'scikit',
    'joblib', 'megengine', 'xgboost', 'catboost', 'fastai', 'lightgbm', 'gradio',
    'jsonargparse')}


# -- the task ---------------------------------------------------------------------------------
class _WentOffline(BaseException):
    """Raised by :class:`_OfflineAwareSession` past ClearML's ``except Exception`` retry loop."""


class _OfflineAwareSession:
    """A session whose ``send`` raises :class:`_WentOffline` where ClearML's returns None."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def send(self, *args: Any, **kwargs: Any) -> Any:
        result = self._session.send(*args, **kwargs)
        if result is None:
            raise _WentOffline
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def patch_offline_retry_loop() -> None:
    """Mend a ClearML 2.1.12 race: ``InterfaceBase._send`` checks offline mode once, then
    retries ``while True``; a request in flight when ``Task.set_offline(True)`` comes (the
    switch to offline) gets None back, fails on ``res.meta`` and prints a traceback in a
    tight loop forever. Patched, that request returns None, as it would have offline."""
    from clearml.backend_interface.base import InterfaceBase
    original = InterfaceBase.__dict__['_send']
    if getattr(original, '_smallseg', False):
        return

    def _send(cls: Any, session: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original.__func__(cls, _OfflineAwareSession(session), req, *args, **kwargs)
        except _WentOffline:
            return None

    _send._smallseg = True  # type: ignore[attr-defined]
    InterfaceBase._send = classmethod(_send)


def _install_session(server: Any, retries: dict, connect_timeout: float) -> None:
    """A default API session that gives up in seconds, not ClearML's 240 retries x backoff."""
    from clearml.backend_api import Session
    from clearml.backend_interface.base import InterfaceBase
    from clearml.config import config_obj
    session = Session(host=server.host, api_key=server.access_key, secret_key=server.secret_key,
                      http_retries_config=dict(retries), config=config_obj,
                      initialize_logging=False)
    session._session_timeout = (connect_timeout, 20.0)  # default: (10 s, 300 s)
    session._write_session_timeout = (connect_timeout, 60.0)  # default: (300 s, 300 s)
    InterfaceBase._set_default_session(session)


def init_task(mode: str, server: Any, continue_id: Optional[str], settings: dict) -> Any:
    """``Task.init`` for ``settings`` (project, name, tags, kind, freeze = requirements file);
    ``continue_id`` reopens that task (its iterations are not offset)."""
    from clearml import Task

    patch_offline_retry_loop()
    # ClearML's own warnings (retries, git remote...) would add lines: the run prints one
    logging.getLogger('clearml').setLevel(logging.ERROR)
    if mode == 'offline':
        Task.set_offline(True)
        # ClearML asks updates.clear.ml for a newer client even offline: an offline run sends
        # nothing (a firewalled DNS makes that lookup hang; air-gapped sites log it)
        from clearml.utilities.check_updates import CheckPackageUpdates
        CheckPackageUpdates._package_version_checked = True
    elif Task.is_offline():
        raise RuntimeError('this process already logs offline')
    else:
        _install_session(server, HTTP_RETRIES, CHECK_TIMEOUT_S)
    if hasattr(Task, '_report_subprocess_enabled'):
        Task._report_subprocess_enabled = False  # a reporting thread, no forked process
    freeze = Path(settings['freeze'])
    freeze.parent.mkdir(parents=True, exist_ok=True)
    freeze.write_text(pip_freeze())
    # the environment's packages instead of ClearML's (slow) analysis of the imports
    Task.force_requirements_env_freeze(force=True, requirements_file=str(freeze))
    previous_models = _offline_models(continue_id) if mode == 'offline' and continue_id else []
    kind = settings['kind']
    kwargs: dict[str, Any] = dict(
        project_name=settings['project'], task_name=settings['name'], tags=settings['tags'],
        task_type=Task.TaskTypes.training if (kind == 'train' or continue_id)
        else Task.TaskTypes.testing,
        reuse_last_task_id=continue_id or False, auto_connect_arg_parser=False,
        auto_connect_frameworks=FRAMEWORKS_OFF, auto_resource_monitoring=mode == 'online')
    if continue_id:
        kwargs['continue_last_task'] = 0
    task = Task.init(**kwargs)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith('clearml'):
            logging.getLogger(name).setLevel(logging.ERROR)
    if previous_models and hasattr(task, '_offline_output_models'):
        task._offline_output_models.extend(previous_models)  # a reopened session forgets them
    if hasattr(Task, '_remove_signal_hooks'):
        Task._remove_signal_hooks()  # Ctrl-C / SIGTERM stay with the run (no unbounded close)
    if mode == 'offline' and hasattr(task, '_wait_for_repo_detection'):
        # ClearML's repository detection thread ends by reloading the task: offline, from its
        # file, which drops what was set in memory meanwhile (e.g. the run's properties)
        task._wait_for_repo_detection(timeout=REPO_DETECTION_WAIT_S)
    return task


def _offline_models(task_id: str) -> list:
    from clearml.config import get_offline_dir
    try:
        data = json.loads((get_offline_dir(task_id) / 'task.json').read_text())
    except (OSError, ValueError):
        return []
    return list(data.get('offline_output_models') or [])


def detach(task: Any, online: bool = True) -> None:
    """Let go of a task without waiting for it: not closed at exit, no longer the main task
    (so ``Task.init`` starts a new one). ``online``: its server is gone; go offline (no more
    network for any ClearML session here), stop its threads, and what they still write goes
    to a scratch folder removed at exit."""
    from clearml import Task
    if task is None:
        Task.set_offline(True)
        return
    try:
        atexit.unregister(task._at_exit)
    except Exception:  # noqa: BLE001
        pass
    if Task.current_task() is task:  # what Task.close() does after its (unbounded) flush
        Task._Task__update_master_pid_task(task=None)  # else current_task() re-inits one
        Task._Task__forked_proc_main_pid = None
        Task._Task__main_task = None
    if not online:
        return
    Task.set_offline(True)  # after: with a current task it asks the server for its status
    scratch = Path(tempfile.mkdtemp(prefix='clearml-detached-'))  # kept: written until exit
    task._offline_dir = scratch
    # what its reporting threads still send: to files there (else tracebacks, 'Retrying')
    metrics = getattr(task, '_metrics_manager', None)
    if metrics is not None and getattr(metrics, '_offline_log_filename', 0) is None:
        metrics._offline_log_filename = scratch / 'metrics.jsonl'
    console = getattr(getattr(getattr(task, '_logger', None), '_task_handler', None),
                      '_background_log', None)
    if console is not None and getattr(console, '_offline_log_filename', 0) is None:
        console._offline_log_filename = scratch / 'log.jsonl'
    # its background threads: the worker would read 'reset' from an offline task and kill
    # the process (ClearML's remote abort), the monitor would log errors; both stop locally
    worker, task._dev_worker = getattr(task, '_dev_worker', None), None
    if worker is not None:
        worker.unregister()
    monitor, task._resource_monitor = getattr(task, '_resource_monitor', None), None
    for stop in (getattr(monitor, 'stop', None),
                 getattr(getattr(task, '_Task__reporter', None), 'stop', None)):
        if stop is not None:
            try:
                bounded(stop, 3.0, 'clearml-detach')
            except Exception:  # noqa: BLE001
                pass


def close_offline(task: Any, session: Path, budget: float) -> None:
    """Close an offline task; its weights join the session zip uncompressed (deflating a
    100 MB checkpoint costs seconds and saves a few percent)."""
    models, parked = session / 'models', session.parent / f'{session.name}.models'
    if models.is_dir():
        _move_tree(models, parked)
    try:
        bounded(task.close, budget, 'clearml-close')
    finally:
        if parked.is_dir():
            _move_tree(parked, models)
    archive = Path(f'{session}.zip')
    if models.is_dir() and archive.is_file():
        with zipfile.ZipFile(archive, 'a', compression=zipfile.ZIP_STORED,
                             allowZip64=True) as zf:
            for path in sorted(models.iterdir()):
                if path.is_file():
                    zf.write(path, f'models/{path.name}')


def _move_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.move(str(src), str(dst))


def set_env(name: str, value: Optional[str]) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def web_page(task: Any) -> Optional[str]:
    try:
        return task.get_output_log_web_page()
    except Exception:  # noqa: BLE001
        return None


# -- logging operations (replayable: plain arguments) -----------------------------------------
def _scalars(task: Any, rows: list) -> None:
    logger = task.get_logger()
    for title, series, value, iteration in rows:
        logger.report_scalar(title, series, float(value), iteration=int(iteration))


def _single(task: Any, name: str, value: float) -> None:
    task.get_logger().report_single_value(name, float(value))


def _image(task: Any, title: str, series: str, png: bytes, iteration: int) -> None:
    import cv2
    rgb = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    task.get_logger().report_image(title, series, iteration=int(iteration),
                                   image=np.ascontiguousarray(rgb))


def _confusion(task: Any, title: str, series: str, matrix: list, labels: list,
               iteration: int) -> None:
    task.get_logger().report_confusion_matrix(
        title, series, np.asarray(matrix, dtype=float), iteration=int(iteration),
        xaxis='predicted', yaxis='truth', xlabels=list(labels), ylabels=list(labels))


def _params(task: Any, name: str, params: dict) -> None:
    task.connect(_plain(params), name=name)


def _config(task: Any, name: str, config: dict) -> None:
    try:
        task.connect_configuration(_plain(config), name=name)
    except Exception:  # noqa: BLE001 - values HOCON cannot hold: the config as JSON text
        task.set_configuration_object(name, config_text=json.dumps(_plain(config), indent=1))


def _properties(task: Any, props: dict) -> None:
    task.set_user_properties(**{k: str(v) for k, v in props.items()})


def _artifact(task: Any, name: str, path: str) -> None:
    task.upload_artifact(name, artifact_object=Path(path), wait_on_upload=False)


def _model(task: Any, path: str, name: str, iteration: Optional[int], labels: dict) -> None:
    from clearml import OutputModel
    # no model design: an offline model with one cannot be imported (clearml 2.1 records both
    # config_text and config_dict, which OutputModel refuses); the task holds the config
    model = OutputModel(task=task, name=name, framework='PyTorch', label_enumeration=labels)
    try:
        model.update_weights(weights_filename=path, auto_delete_file=False,
                             iteration=iteration)
    except AttributeError:
        if not task.is_offline():
            raise
        # clearml 2.1 offline: update_weights asks the stand-in model 'published'
        model._update_weights_offline(weights_filename=path, iteration=iteration)


OPS: dict[str, Callable[..., None]] = {
    'scalars': _scalars, 'single': _single, 'image': _image, 'confusion': _confusion,
    'params': _params, 'config': _config, 'properties': _properties, 'artifact': _artifact,
    'model': _model}


def _plain(value: Any) -> Any:
    """Nested dicts/lists of str, int, float, bool and None (tuples -> lists, others -> str)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def encode_png(rgb: np.ndarray) -> bytes:
    """An RGB picture as PNG bytes (small enough to keep in the journal)."""
    import cv2
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError('cannot encode the picture')
    return buf.tobytes()


# -- environment --------------------------------------------------------------------------------
def pip_freeze() -> str:
    """``name==version`` of every installed distribution (what ``pip freeze`` lists)."""
    names = {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
             if d.metadata['Name']}
    return f'# Python {sys.version.split()[0]}\n' + '\n'.join(sorted(names, key=str.lower)) + '\n'


def _git(*args: str) -> str:
    try:
        out = subprocess.run(['git', '-C', str(REPO), *args], capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def environment_info(work_dir: Path) -> dict[str, str]:
    """Git commit (and whether the tree had changes), machine and library versions."""
    import torch
    commit = _git('rev-parse', 'HEAD')
    info = {
        'git_commit': commit or 'unknown', 'git_branch': _git('rev-parse', '--abbrev-ref', 'HEAD'),
        'git_dirty': str(bool(_git('status', '--porcelain', '--untracked-files=no')))
        if commit else 'unknown',
        'host': socket.gethostname(), 'platform': platform.platform(),
        'cpu': platform.processor() or platform.machine(), 'cpu_count': str(os.cpu_count()),
        'python': sys.version.split()[0], 'torch': torch.__version__,
        'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none',
        'work_dir': str(work_dir), 'command': ' '.join(sys.argv)}
    return info


def default_artifacts(work_dir: Path) -> dict[str, Path]:
    """The run's result files, uploaded when they exist: run info, curves, EDA summary."""
    return {'run_info': work_dir / 'run_info.json',
            'training_curves': work_dir / 'training_curves.png',
            'eda_summary': Path('eda_results') / 'eda_summary.json'}
