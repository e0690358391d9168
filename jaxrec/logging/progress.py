"""Progress of a batch of jobs (sweep trials, paper reproductions): ``[3/16, 0:42 elapsed,
~2:50 left]``. The estimate is the mean time of the jobs finished in this session times the
jobs left (jobs finished by an earlier session count as done, not towards the mean)."""

from __future__ import annotations

import time
from collections.abc import Callable


def clock_text(seconds: float) -> str:
    """``m:ss`` under an hour, else ``h:mm:ss``."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts finished jobs out of ``total``, ``done`` of them finished before this session."""

    def __init__(self, total: int, done: int = 0, *,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.done, self.clock = total, done, clock
        self.start, self.finished = clock(), 0

    def step(self, jobs: int = 1) -> str:
        """Count ``jobs`` more finished; the progress note."""
        self.finished += jobs
        return self.note()

    def note(self) -> str:
        elapsed = self.clock() - self.start
        count = min(self.done + self.finished, self.total)
        parts = [f"{count}/{self.total}", f"{clock_text(elapsed)} elapsed"]
        if self.finished and count < self.total:
            parts.append(f"~{clock_text(elapsed / self.finished * (self.total - count))} left")
        return "[" + ", ".join(parts) + "]"
