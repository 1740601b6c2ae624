"""Progress for the CLI: a live bar on a terminal, a few plain lines in a log.

tqdm redraws its bar with carriage returns; written to a file or a pipe (a systemd journal, CI, `2> log`) every
redraw lands on the same "line", which grows to tens of kilobytes. Off a terminal we print one line per stage
(and per quarter of the work) instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """``update(fraction, stage)``: a tqdm bar on a terminal, else a line per new stage or quarter done."""

    def __init__(self, label: str, *, total: float = 100.0, unit: str = "%", stream: TextIO | None = None,
                 unit_scale: bool = False):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self._bar = (tqdm(total=total, desc=label, unit=unit, unit_scale=unit_scale, leave=False, file=self.stream)
                     if is_terminal(self.stream) else None)
        self._stage: str | None = None
        self._quarter = -1
        self._done = 0.0

    def update(self, done: float, stage: str | None = None) -> None:
        """``done``: how much is done, in ``total``'s units (a fraction of 100 by default)."""
        self._done = done
        if self._bar is not None:
            if stage:
                self._bar.set_postfix_str(stage)
            self._bar.update(done - self._bar.n)
            return
        quarter = int(4 * done / self.total) if self.total else 0
        if stage != self._stage or quarter > self._quarter:
            where = f" {stage}" if stage else ""
            print(f"{self.label}:{where} {100 * done / self.total:.0f}%" if self.total else f"{self.label}:{where}",
                  file=self.stream, flush=True)
            self._stage, self._quarter = stage, max(quarter, self._quarter)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
