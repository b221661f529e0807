"""Calls that may block (a network, a stuck library) without blocking their caller."""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, Callable


def call_with_timeout(fn: Callable[[], Any], seconds: float, name: str = 'bounded-call') -> Any:
    """``fn()`` in a daemon thread: its result, its exception, or TimeoutError after ``seconds``
    (the thread is left behind and cannot block the caller or the process's exit)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f'no answer in {seconds:.0f} s')
    return future.result()
