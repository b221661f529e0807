"""The ClearML calls behind a run's task: server check, open, the logging operations its
journal replays (``OPS``), close. Any may block or raise: :func:`bounded` gives each a budget."""
from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import Future
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHECK_TIMEOUT_S = 3.0  # server check (login), per socket operation
# nothing patched, no repository scan (it asks updates.clear.ml): smallseg logs git and pip
FRAMEWORKS_OFF = dict.fromkeys((
    'pytorch matplotlib tensorflow tensorboard tfdefines hydra scikit joblib megengine xgboost '
    'catboost fastai lightgbm gradio jsonargparse detect_repository').split(), False)


def bounded(fn: Callable[[], Any], budget: float) -> Any:
    """``fn()`` in a daemon thread: its result, its exception, or TimeoutError after ``budget``
    seconds (the thread is left behind and cannot block the run or its exit)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)

    thread = threading.Thread(target=run, name='clearml-call', daemon=True)
    thread.start()
    thread.join(budget)
    if thread.is_alive():
        raise TimeoutError(f'no answer in {budget:.0f} s')
    return future.result()


class Server(NamedTuple):
    """Where and as whom to log online (``source``: 'environment' or the config file)."""
    host: str
    access_key: str
    secret_key: str
    source: str


def find_server() -> Optional[Server]:
    """The configured server and credentials (environment first, then clearml.conf), or None."""
    env = {k: os.environ.get(f'CLEARML_API_{k}') for k in ('HOST', 'ACCESS_KEY', 'SECRET_KEY')}
    path = Path(os.environ.get('CLEARML_CONFIG_FILE') or '~/clearml.conf').expanduser()
    api: dict = {}
    if path.is_file():
        from clearml.utilities.pyhocon import ConfigFactory
        api = ConfigFactory.parse_file(str(path)).get('api', {}) or {}
    creds = api.get('credentials', {}) or {}
    key = env['ACCESS_KEY'] or creds.get('access_key')
    secret = env['SECRET_KEY'] or creds.get('secret_key')
    if not (key and secret):
        return None
    host = env['HOST'] or api.get('api_server') or api.get('host') or 'https://api.clear.ml'
    return Server(str(host).rstrip('/'), str(key), str(secret),
                  'environment' if env['ACCESS_KEY'] else str(path))


def check_server(server: Server) -> Optional[str]:
    """None when the server accepts a login within seconds, else why not."""
    token = base64.b64encode(f'{server.access_key}:{server.secret_key}'.encode()).decode()
    request = urllib.request.Request(f'{server.host}/auth.login', b'{}', method='POST', headers={
        'Content-Type': 'application/json', 'Authorization': f'Basic {token}'})

    def login() -> None:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT_S) as response:
            response.read(1 << 16)

    try:  # the budget covers DNS, connect and read, whatever happens
        bounded(login, 2 * CHECK_TIMEOUT_S + 1)
    except urllib.error.HTTPError as exc:
        return 'rejected the credentials' if exc.code in (401, 403) else f'answered HTTP {exc.code}'
    except OSError as exc:  # URLError and TimeoutError included
        why = getattr(exc, 'reason', exc)
        return f'is not reachable ({getattr(why, "strerror", None) or why or type(exc).__name__})'
    return None


def init_task(mode: str, continue_id: Optional[str], settings: dict) -> Any:
    """``Task.init`` with ``settings`` (project, name, tags, kind) or reopening ``continue_id``;
    a new or training task gets git commit, pip freeze and machine."""
    from clearml import Task
    from clearml.config import get_offline_dir
    logging.getLogger('clearml').setLevel(logging.ERROR)  # the run prints one warning
    models = []
    if mode == 'offline':
        Task.set_offline(True)
        task_file = get_offline_dir(continue_id) / 'task.json' if continue_id else None
        if task_file and task_file.is_file():
            models = json.loads(task_file.read_text()).get('offline_output_models') or []
    elif Task.is_offline():
        raise RuntimeError('this process already logs offline')
    clearml_internals()
    # Task.init would reseed random, numpy and torch with one fixed seed: every unseeded run
    # after it would draw the same seed; the run's seeding stays mmengine's (randomness)
    Task.set_random_seed(None)
    task = Task.init(
        project_name=settings['project'], task_name=settings['name'], tags=settings['tags'],
        task_type='training' if settings['kind'] == 'train' or continue_id else 'testing',
        reuse_last_task_id=continue_id or False, continue_last_task=0 if continue_id else False,
        auto_connect_arg_parser=False, auto_connect_frameworks=FRAMEWORKS_OFF,
        auto_resource_monitoring=mode == 'online')
    for name in list(logging.root.manager.loggerDict):
        if name.startswith('clearml'):
            logging.getLogger(name).setLevel(logging.ERROR)
    clearml_internals(task, models=models)
    if settings['kind'] == 'train' or not continue_id:
        commit = _git('rev-parse', 'HEAD')
        pip = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                      if d.metadata['Name']}, key=str.lower)
        task.update_task({'script': {
            'repository': re.sub(r'//[^/@]*@', '//', _git('remote', 'get-url', 'origin')),
            'version_num': commit, 'branch': _git('rev-parse', '--abbrev-ref', 'HEAD'),
            'requirements': {'pip': '\n'.join(pip)}}})
        import torch
        task.set_user_properties(
            git_commit=commit or 'unknown', git_dirty=str(bool(_git(
                'status', '--porcelain', '--untracked-files=no'))) if commit else 'unknown',
            host=platform.node(), platform=platform.platform(),
            cpu=platform.processor() or platform.machine(), cpu_count=str(os.cpu_count()),
            python=sys.version.split()[0], torch=torch.__version__,
            cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none',
            command=' '.join(sys.argv))
    return task


def _git(*args: str) -> str:
    try:
        return subprocess.run(['git', '-C', str(REPO), *args], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def clearml_internals(task: Any = None, models: Sequence[dict] = (), weights: tuple = (),
                      detach: Optional[str] = None) -> None:
    """Every private ClearML attribute smallseg uses (clearml 2.1; checked by
    ``test_clearml_internals_exist``). Reports always go through a thread, not a forked process.
    ``models``: the output models a reopened offline session forgot. ``weights``: ``(model, file,
    iteration)`` offline (``update_weights`` asks a stand-in model whether it is published).
    ``detach``: let go of ``task`` ('closing': its close ran out of time; 'lost': its server is
    gone, the process goes offline, the task's threads stop and write to a scratch folder)."""
    from clearml import Task
    from clearml.backend_interface.base import InterfaceBase
    Task._report_subprocess_enabled = False
    if models:
        task._offline_output_models.extend(models)
    if weights:
        weights[0]._update_weights_offline(weights_filename=weights[1], iteration=weights[2])
    if detach and task is not None:
        atexit.unregister(task._at_exit)
        if Task.current_task() is task:  # what close() does after its (unbounded) flush
            Task._Task__update_master_pid_task(task=None)
            Task._Task__forked_proc_main_pid = Task._Task__main_task = None
    if detach != 'lost':
        return
    original = InterfaceBase.__dict__['_send']
    if not getattr(original, 'smallseg', False):
        # clearml 2.1.12 checks offline mode once, then retries `while True`: a request in
        # flight when the process goes offline gets None and loops on `res.meta` forever
        def _send(cls: Any, session: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
            def send(*a: Any, **k: Any) -> Any:  # `session.send` is all it uses
                if (result := session.send(*a, **k)) is None:
                    raise _WentOffline
                return result
            try:
                return original.__func__(cls, SimpleNamespace(send=send), req, *args, **kwargs)
            except _WentOffline:
                return None
        _send.smallseg = True  # type: ignore[attr-defined]
        InterfaceBase._send = classmethod(_send)
    Task.set_offline(True)
    if task is not None:
        task._offline_dir = scratch = Path(tempfile.mkdtemp(prefix='clearml-detached-'))
        task._metrics_manager._offline_log_filename = scratch / 'metrics.jsonl'
        task._logger._task_handler._background_log._offline_log_filename = scratch / 'log'
        for stop in (getattr(task._dev_worker, 'unregister', None),
                     getattr(task._resource_monitor, 'stop', None),
                     getattr(task._Task__reporter, 'stop', None)):
            try:
                bounded(stop, 3.0) if stop else None
            except Exception:  # noqa: BLE001
                pass
        task._dev_worker = task._resource_monitor = None


class _WentOffline(BaseException):
    """Raised past ClearML's ``except Exception`` retry loop."""


def close_offline(task: Any, session: Path, budget: float) -> None:
    """Close an offline task; its weights join the session zip uncompressed (deflating a
    100 MB checkpoint costs seconds and saves a few percent)."""
    models, parked = session / 'models', session.parent / f'{session.name}.models'
    shutil.rmtree(parked, ignore_errors=True)  # a previous close that was cut short
    if models.is_dir():
        models.rename(parked)
    try:
        bounded(task.close, budget)
    finally:
        if parked.is_dir():
            parked.rename(models)
    if models.is_dir() and Path(f'{session}.zip').is_file():
        with zipfile.ZipFile(f'{session}.zip', 'a', zipfile.ZIP_STORED, allowZip64=True) as zf:
            for path in sorted(p for p in models.iterdir() if p.is_file()):
                zf.write(path, f'models/{path.name}')


def _model(task: Any, path: str, name: str, iteration: int, labels: dict) -> None:
    from clearml import OutputModel  # no model design: the task holds the config
    model = OutputModel(task=task, name=name, framework='PyTorch', label_enumeration=labels)
    if task.is_offline():
        return clearml_internals(weights=(model, path, iteration))
    model.update_weights(weights_filename=path, auto_delete_file=False, iteration=iteration)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: getattr(v, 'tolist', v.__str__)()))


def _decode(png: bytes) -> np.ndarray:
    import cv2
    return np.ascontiguousarray(cv2.imdecode(np.frombuffer(png, np.uint8), 1)[..., ::-1])


OPS = {  # replayable logging operations: plain arguments (pictures as PNG bytes)
    'scalars': lambda task, rows: [task.get_logger().report_scalar(
        title, series, float(value), int(step)) for title, series, value, step in rows],
    'single': lambda task, pairs: [task.get_logger().report_single_value(name, value)
                                   for name, value in pairs],
    'image': lambda task, title, series, png, step: task.get_logger().report_image(
        title, series, step, image=_decode(png)),
    'confusion': lambda task, matrix, labels, step: task.get_logger().report_confusion_matrix(
        'test confusion matrix', 'test', np.asarray(matrix, float), step, xaxis='predicted',
        yaxis='truth', xlabels=labels, ylabels=labels),
    'params': lambda task, name, params: task.connect(_plain(params), name=name),
    'config': lambda task, name, config: task.set_configuration_object(
        name, config_text=json.dumps(_plain(config), indent=1), config_type='json'),
    'properties': lambda task, props: task.set_user_properties(
        **{k: str(v) for k, v in props.items()}),
    'artifact': lambda task, name, path: task.upload_artifact(
        name, artifact_object=Path(path), wait_on_upload=False),
    'model': _model}
