"""Where the ClearML server is (environment, then clearml.conf) and whether it answers, in
seconds; :func:`bounded` runs a call with a time budget."""
from __future__ import annotations

import base64
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

CHECK_TIMEOUT_S = 3.0  # server check (login / ping), per socket operation


def bounded(fn: Callable[[], Any], budget: float, name: str = 'clearml-call') -> Any:
    """``fn()`` in a daemon thread: its result, its exception, or TimeoutError after ``budget``
    seconds (the thread is left behind and cannot block the run or its exit)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box['value'] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box['error'] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(budget)
    if thread.is_alive():
        raise TimeoutError(f'no answer in {budget:.0f} s')
    if 'error' in box:
        raise box['error']
    return box.get('value')


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
    key, secret = env['ACCESS_KEY'] or creds.get('access_key'), env['SECRET_KEY'] or creds.get(
        'secret_key')
    if not (key and secret):
        return None
    host = env['HOST'] or api.get('api_server') or api.get('host') or 'https://api.clear.ml'
    return Server(str(host).rstrip('/'), str(key), str(secret),
                  'environment' if env['ACCESS_KEY'] else str(path))


def check_server(server: Server, login: bool = True) -> Optional[str]:
    """None when the server answers (``login``: and accepts the credentials), else why not."""
    headers = {'Content-Type': 'application/json'}
    if login:
        token = base64.b64encode(f'{server.access_key}:{server.secret_key}'.encode()).decode()
        headers['Authorization'] = f'Basic {token}'
    url = f"{server.host}/{'auth.login' if login else 'debug.ping'}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, b'{}', headers, method='POST'),
                                    timeout=CHECK_TIMEOUT_S) as response:
            response.read(1 << 16)
        return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return 'rejected the credentials' if login else None
        return None if (not login and exc.code < 500) else f'answered HTTP {exc.code}'
    except urllib.error.URLError as exc:
        return f'is not reachable ({getattr(exc.reason, "strerror", None) or exc.reason})'
    except OSError as exc:  # TimeoutError included
        return f'is not reachable ({exc or type(exc).__name__})'
