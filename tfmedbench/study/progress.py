"""The sweep's progress line: cells done / running / failed / total, elapsed time and ETA."""

from __future__ import annotations

import sys
import time

def _fmt_duration(seconds):
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One overall bar line per cell, printed above Keras' per-epoch progress.

    ETA = remaining cells x mean cell time of this session (per task where known), divided by
    the cells that run at once (`slots`: 1 locally, the cluster's capacity under Ray).
    `running`: {node: cells running there}, shown when cells run in parallel (None: hidden).
    """

    def __init__(self, total, done, stream=None, width=24, slots=1):
        self.total, self.done, self.failed = total, done, 0
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.durations = {}  # task -> [seconds]
        self.slots = slots
        self.running = None

    def eta(self, remaining_tasks):
        all_d = [d for ds in self.durations.values() for d in ds]
        if not all_d:
            return None
        mean_all = sum(all_d) / len(all_d)
        total = 0.0
        for task in remaining_tasks:
            ds = self.durations.get(task)
            total += sum(ds) / len(ds) if ds else mean_all
        return total / max(1, min(self.slots, len(remaining_tasks)))

    def line(self, remaining_tasks, current=None):
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [
            f"[benchmark] [{bar}] {self.done}/{self.total} cells ({100 * frac:.0f}%)",
            f"{self.failed} failed" if self.failed else None,
            self._running() if self.running is not None else None,
            f"elapsed {_fmt_duration(time.monotonic() - self.start)}",
            f"ETA {_fmt_duration(self.eta(remaining_tasks))}",
            f"now: {current}" if current else None,
        ]
        return " | ".join(p for p in parts if p)

    def _running(self, most=8):
        nodes = sorted(self.running.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{node}: {n}" for node, n in nodes[:most])
        more = f", +{len(nodes) - most} nodes" if len(nodes) > most else ""
        count = sum(self.running.values())
        return f"{count} running" + (f" ({shown}{more})" if nodes else "")

    def show(self, remaining_tasks, current=None):
        print(self.line(remaining_tasks, current), file=self.stream, flush=True)

    def finished(self, task, seconds, ok):
        self.done += 1
        self.failed += 0 if ok else 1
        self.durations.setdefault(task, []).append(seconds)

