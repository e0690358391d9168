"""SIGTERM / SIGINT as a request to stop after the current epoch (with a checkpoint).

Schedulers (Slurm, Kubernetes, spot instances) send SIGTERM some time before they
kill a job; Ctrl-C sends SIGINT. Inside :func:`stop_on_signals` the first such
signal only sets a flag that the training loop polls after each epoch; a second
SIGINT interrupts at once. Outside the main thread (where Python cannot install
handlers) nothing is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}  # 128 + signal number, as shells report


class StopFlag:
    """``flag()`` is true once a signal arrived; ``signum`` says which."""

    def __init__(self):
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def stop_on_signals():
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in EXIT_CODES}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
