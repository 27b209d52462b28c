"""Progress for long commands: rows done of the total, rate and ETA, refreshed every few seconds.

The figures come from a callable, so the display works the same for one process or for many
workers whose progress is read back from the database.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from django.db import connection


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """A background thread printing `label  done / total (pct)  rate/s  ETA` every `interval` seconds."""

    def __init__(self, figures: Callable[[], tuple[int, int, str | None]], *, stream: TextIO | None = None,
                 interval: float = 2.0, unit: str = "rows"):
        self.figures, self.stream, self.interval, self.unit = figures, stream or sys.stderr, interval, unit
        self.started = time.monotonic()
        self.first_done: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __enter__(self) -> Progress:
        try:
            # A resumed run starts with work already done: the rate counts this invocation only.
            self.first_done = self.figures()[0]
        except Exception:  # noqa: BLE001 - see show()
            self.first_done = 0
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval * 2)
        self.show(final=True)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.show()
        finally:
            connection.close()  # this thread's own database connection

    def line(self, done: int, total: int, label: str | None) -> str:
        if self.first_done is None:
            self.first_done = 0
        elapsed = time.monotonic() - self.started
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        pct = f"{100 * done / total:5.1f}%" if total else "  –  "
        eta = format_duration((total - done) / rate) if rate > 0 and total >= done else "–"
        return (f"{label or 'finishing':<10} {done:>12,} / {total:,} {self.unit} ({pct})  "
                f"{rate:,.0f} {self.unit}/s  elapsed {format_duration(elapsed)}  ETA {eta}")

    def show(self, final: bool = False) -> None:
        try:
            done, total, label = self.figures()
        except Exception:  # noqa: BLE001 - a failed progress read must never break the work itself
            return
        text = self.line(done, total, label)
        if self.tty and not final:
            self.stream.write("\r" + text + "\x1b[K")
        else:
            self.stream.write(("\r" if self.tty else "") + text + "\n")
        self.stream.flush()
