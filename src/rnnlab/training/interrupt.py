"""Ctrl-C between steps, never inside one.

A KeyboardInterrupt raised in the middle of an update (after the forward pass moved the state,
before the optimiser step) would leave a checkpoint whose parts disagree. While a training loop
runs inside `DeferredInterrupt`, the first Ctrl-C only sets a flag; the loop calls `check()`
between steps, where everything is consistent, and the KeyboardInterrupt is raised there. A
second Ctrl-C interrupts at once. Outside the main thread, or where SIGINT is ignored (a job
started with `&` by a non-interactive shell), nothing changes.
"""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = previous if previous is not None else signal.default_int_handler
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:  # asked twice: stop now
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Between steps: raise the deferred KeyboardInterrupt, if one was asked for."""
        if self.requested:
            raise KeyboardInterrupt
