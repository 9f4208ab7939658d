"""The crawl's progress as an append-only journal (`OUT/state/journal.jsonl`), replayed on resume.

One line per event, flushed and fsynced before the crawl goes on:
  session  a run of `scalelab crawl` started, with its config
  seeds    the seed URLs (first session only) and the seed lines that were not URLs
  batch    an actor's batch committed: its log rows, the links enqueued and those out of
           scope, and how far its WARC file is committed
Replay gives the URLs seen, those done, the frontier (seen, not done, in discovery order) and
each WARC file's committed length. A torn last line (the driver killed mid-write) is ignored:
its batch was never committed, so its URLs are fetched again and its WARC records cut off.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class CrawlState:
    config: Optional[dict[str, Any]] = None
    seeds: list[str] = field(default_factory=list)
    sessions: int = 0
    queued: dict[str, tuple[int, int]] = field(default_factory=dict)  # url -> (depth, redirects), in order
    seen: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    warc_committed: dict[str, int] = field(default_factory=dict)

    def frontier(self) -> list[tuple[str, int, int]]:
        return [(u, d, r) for u, (d, r) in self.queued.items() if u not in self.done]

    def apply(self, entry: dict[str, Any]) -> None:
        kind = entry["type"]
        if kind == "session":
            self.sessions += 1
            self.config = self.config or entry["config"]
        elif kind == "seeds":
            self.seeds = [u for u, _, _ in entry["urls"]]
            self._enqueue(entry["urls"])
            self.rows.extend(entry["rows"])
        elif kind == "batch":
            self._enqueue(entry["enqueued"])
            for row in entry["rows"]:
                self.rows.append(row)
                if row["kind"] == "page":
                    self.done.add(row["url"])
                elif row["kind"] == "discovered":
                    self.seen.add(row["url"])
            if entry.get("warc"):
                name, length = entry["warc"]
                self.warc_committed[name] = max(length, self.warc_committed.get(name, 0))

    def _enqueue(self, items: list[list[Any]]) -> None:
        for url, depth, redirects in items:
            self.seen.add(url)
            self.queued.setdefault(url, (depth, redirects))


class Journal:
    def __init__(self, out_dir: Path):
        self.path = out_dir / "state" / "journal.jsonl"
        self._fh = None

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def replay(self) -> CrawlState:
        state = CrawlState()
        if not self.path.is_file():
            return state
        good = 0  # bytes of whole lines
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn write: never committed
                state.apply(json.loads(line))
                good += len(line)
        # Drop a torn tail, so the next appends start on a line of their own.
        if good != self.path.stat().st_size:
            os.truncate(self.path, good)
        return state

    def append(self, entry: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")
        self._fh.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
