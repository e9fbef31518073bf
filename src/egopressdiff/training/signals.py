"""Graceful stop on SIGINT/SIGTERM: the training loop finishes its step, saves, and exits.

The first signal only sets a flag that the loop polls after every optimizer step; a
second one raises KeyboardInterrupt at once (for a user who really wants out). The exit
code the CLI returns afterwards is 128 + signal number (130 for SIGINT, 143 for SIGTERM),
the shell convention for "ended by this signal".
"""

from __future__ import annotations

import signal
import threading


class GracefulStop:
    """Context manager installing the handlers (main thread only; elsewhere it is inert)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 0 if self.signum is None else 128 + int(self.signum)

    def _handle(self, signum, _frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()
