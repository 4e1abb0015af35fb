"""Stop signals of a training: SIGTERM/SIGINT stop, SIGUSR2 (submitit) preempts, at a step boundary."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger("vdm.train.loop")


class StopSignals:
    """Records SIGTERM/SIGINT (stop) and SIGUSR2 (preempt, under submitit) to act on at a step boundary."""

    def __init__(self) -> None:
        self.stop = False
        self.preempt = False
        self.signame = ""
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.signame = signal.Signals(signum).name
        if signum == signal.SIGUSR2 and callable(self._previous.get(signal.SIGUSR2)):
            self.preempt = True
        else:
            self.stop = True
        log.warning("received %s: stopping after the current step", self.signame)

    def hand_over_preemption(self) -> None:
        """Call the handler that was installed before (submitit: checkpoint + requeue + exit)."""
        handler = self._previous.get(signal.SIGUSR2)
        self.restore()
        # `scontrol requeue` makes SLURM send SIGTERM to every process of the job, the `scontrol` child
        # itself included; an ignored SIGTERM is inherited across exec, so it survives to confirm.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if callable(handler):
            handler(signal.SIGUSR2, None)
