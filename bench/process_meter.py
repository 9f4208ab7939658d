"""CPU seconds and peak memory of a process and everything it starts (Ray's raylet, GCS, workers).

A thread samples the process tree every `interval` seconds:
- CPU: user + system seconds of every process seen, each counted from its first sample (or from
  zero if it started after the meter), so work done before `start()` is not counted;
- memory: the sum of PSS over the tree (proportional set size: pages shared between processes, such
  as Ray's object store, count once in total, not once per process), and its peak.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psutil


@dataclass
class Usage:
    wall_s: float
    cpu_s: float
    peak_pss_mb: float
    cpu_by_kind: dict[str, float] = field(default_factory=dict)  # driver, Ray's daemons, workers
    peak_by_kind: dict[str, float] = field(default_factory=dict)  # MB of PSS of each kind at the peak
    peak_at_s: float = 0.0  # seconds after the start

    def cores_busy(self, cores: int) -> float:
        return self.cpu_s / (self.wall_s * cores)


class ProcessTreeMeter:
    def __init__(self, root: int | None = None, interval: float = 0.5):
        self.root = psutil.Process(root or os.getpid())
        self.interval = interval
        self._base: dict[tuple[int, float], float] = {}
        self._last: dict[tuple[int, float], float] = {}
        self._kind: dict[tuple[int, float], str] = {}
        self._peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return [self.root]

    def _sample(self, first: bool = False) -> None:
        pss = 0
        by_kind: Counter = Counter()
        for p in self._tree():
            try:
                with p.oneshot():
                    key = (p.pid, p.create_time())
                    t = p.cpu_times()
                    cpu = t.user + t.system
                    process_pss = p.memory_full_info().pss
                    self._kind[key] = _kind(p, self.root)
                    pss += process_pss
                    by_kind[self._kind[key]] += process_pss / 2**20
                    by_kind[f"processes: {self._kind[key]}"] += 1
            except psutil.Error:
                continue
            if first:
                self._base[key] = cpu
            self._base.setdefault(key, 0.0)
            self._last[key] = cpu
        if pss > self._peak_pss:
            self._peak_pss, self._peak_by_kind = pss, by_kind
            self._peak_at = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "ProcessTreeMeter":
        self._sample(first=True)
        self._peak_pss, self._peak_by_kind = 0, Counter()
        self._t0 = self._peak_at = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> Usage:
        self._sample()
        wall = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        used = {k: self._last[k] - self._base[k] for k in self._last}
        by_kind: Counter = Counter()
        for k, cpu in used.items():
            by_kind[self._kind.get(k, "other")] += cpu
        return Usage(wall_s=wall, cpu_s=sum(used.values()), peak_pss_mb=self._peak_pss / 2**20,
                     cpu_by_kind=dict(by_kind.most_common()),
                     peak_by_kind={k: round(v) for k, v in sorted(self._peak_by_kind.items())},
                     peak_at_s=self._peak_at - self._t0)


def _kind(p: psutil.Process, root: psutil.Process) -> str:
    """driver, a Ray worker (named by its last task, ray::IDLE between tasks), or the daemon's name."""
    if p.pid == root.pid:
        return "driver"
    name = p.name()
    if name.startswith("ray::"):
        return "ray workers"
    return name
