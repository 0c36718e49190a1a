"""Worker processes of the batch commands (`predict --workers`, `label --workers`): started so that Ctrl-C
reaches the parent alone, which stops them."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def workers_ignore_ctrl_c():
    """Processes started inside ignore Ctrl-C (SIGINT: an ignored signal stays ignored through their exec, and
    Python then installs no KeyboardInterrupt of its own): the parent alone handles it and stops them, so no
    worker prints a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
