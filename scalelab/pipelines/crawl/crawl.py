"""The crawl driver: seeds in, a frontier scheduled over fetch actors, progress journaled.

    seeds ─► frontier (breadth first) ─► per-actor queues (hosts partitioned by `owner_of`)
          ─► HostFetcher.fetch_batch on Ray (robots.txt, per-host delay, fetch, WARC)
          ─► links: normalized, scoped, depth-limited, deduplicated ─► frontier
          ─► journal line per batch ─► at the end: WARCs finalized, crawl_log.parquet, crawl.json

The driver holds the frontier and the set of URLs seen; actors hold nothing that a restart
would lose (a dead actor's uncommitted batch is fetched again by its replacement).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import ray

from scalelab.core.atomic import write_json
from scalelab.core.output_folder import claim
from scalelab.core.ray_session import ensure_ray, fault_hook_env
from scalelab.pipelines.crawl.config import RESUMABLE_CHANGES, CrawlConfig
from scalelab.pipelines.crawl.crawl_log import NOT_FETCHED, totals, write_log
from scalelab.pipelines.crawl.host_fetcher import HostFetcher, owner_of
from scalelab.pipelines.crawl.journal import CrawlState, Journal
from scalelab.pipelines.crawl.scope import Scope
from scalelab.pipelines.crawl.urls import BadUrl, host_key, normalize_url
from scalelab.pipelines.crawl.warc_files import finalize_warcs, is_crawl_warc
from scalelab.core.config import ConfigError, changed_fields


MAX_ACTOR_FAILURES = 3


class CrawlError(RuntimeError):
    """A crawl that cannot go on (an actor failing again and again); the journal keeps its progress."""

@dataclass
class CrawlResult:
    out_dir: Path
    totals: dict[str, Any]
    warc_files: list[Path]
    sessions: int
    resumed: bool
    seconds: float


def read_seeds(path: Path, cfg: CrawlConfig) -> tuple[list[str], list[dict[str, Any]]]:
    """Seed URLs (normalized, deduplicated, in file order) and log rows for lines that aren't URLs."""
    if not path.is_file():
        raise ConfigError(f"{path}: seed file not found")
    seeds: list[str] = []
    bad: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            seeds.append(normalize_url(line, cfg.urls))
        except BadUrl as exc:
            bad.append(_judged_row(line, "seed", "invalid_url", f"{path.name}:{n}: {exc}"))
    if not seeds:
        raise ConfigError(f"{path}: no usable seed URL" + (f" ({bad[0]['detail']})" if bad else ""))
    return list(dict.fromkeys(seeds)), bad


def _judged_row(url: str, kind: str, error: str, detail: str, depth: Optional[int] = None) -> dict[str, Any]:
    return {"url": url, "host": None, "kind": kind, "depth": depth, "status": None, "bytes": 0, "error": error,
            "detail": detail, "content_type": None, "time": time.time(), "seconds": 0.0, "actor": None,
            "warc_file": None, "redirect": None}


class _Frontier:
    """Per-actor FIFO queues of (url, depth, redirects): breadth first within each actor."""
    def __init__(self, num_actors: int):
        self.queues: list[deque[tuple[str, int, int]]] = [deque() for _ in range(num_actors)]

    def push(self, item: tuple[str, int, int]) -> None:
        self.queues[owner_of(host_key(item[0]), len(self.queues))].append(item)

    def take(self, actor: int, n: int) -> list[tuple[str, int, int]]:
        q = self.queues[actor]
        return [q.popleft() for _ in range(min(n, len(q)))]

    def requeue(self, actor: int, items: list[tuple[str, int, int]]) -> None:
        self.queues[actor].extendleft(reversed(items))

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues)


CRAWL_KIND = "crawl"


def _clear_crawl(out: Path) -> None:
    """--force: remove what a crawl wrote (its WARCs by their names, journal, log, totals), nothing else."""
    for path in sorted((out / "warc").glob("*")) if (out / "warc").is_dir() else []:
        if is_crawl_warc(path.name):
            path.unlink()
    for name in ("state/journal.jsonl", "crawl_log.parquet", "crawl.json"):
        (out / name).unlink(missing_ok=True)
    for folder in ("warc", "state"):
        try:
            (out / folder).rmdir()
        except OSError:
            pass  # not there, or it holds files a crawl did not write


def _start_state(cfg: CrawlConfig, seeds_file: Path, out: Path, force: bool,
                 overwrite: bool = False) -> tuple[Journal, CrawlState, bool]:

    seeds, bad = read_seeds(seeds_file, cfg)  # a bad seed file is said before the folder is touched
    # Crawls from before the folder marker are recognized by their journal.
    claim(out, CRAWL_KIND, overwrite, legacy=("state/journal.jsonl",))
    journal = Journal(out)
    if force:
        _clear_crawl(out)
    if not journal.exists():
        journal.append({"type": "session", "config": cfg.model_dump(mode="json"), "time": time.time()})
        journal.append({"type": "seeds", "urls": [[u, 0, 0] for u in seeds], "rows": bad})
        return journal, journal.replay(), False
    state = journal.replay()
    differ = changed_fields(state.config, cfg.model_dump(mode="json"), RESUMABLE_CHANGES)
    if state.seeds != seeds:
        differ.insert(0, f"seeds ({seeds_file})")
    if differ:
        raise ConfigError(f"{out}: holds a crawl with other settings ({', '.join(differ)}); "
                          "rerun with the same seeds and config to resume, or pass --force to start over")
    journal.append({"type": "session", "config": cfg.model_dump(mode="json"), "time": time.time()})
    state.sessions += 1
    return journal, state, True


def run_crawl(cfg: CrawlConfig, seeds_file: str | Path, out_dir: str | Path, address: Optional[str] = None,
              force: bool = False, on_batch: Optional[Callable[[dict[str, Any]], None]] = None,
              overwrite: bool = False) -> CrawlResult:
    """Crawl from the seeds into OUT/warc/*.warc.gz; rerun with the same arguments to resume.
    `overwrite` crawls into a non-empty folder scalelab did not create."""
    out = Path(out_dir)
    started = time.perf_counter()
    journal, state, resumed = _start_state(cfg, Path(seeds_file), out, force, overwrite)
    warc_dir = out / "warc"
    finalize_warcs(warc_dir, state.warc_committed)  # a stopped crawl's WARCs, cut to what was committed

    ensure_ray(address)
    session = state.sessions
    scope = Scope(cfg.scope, state.seeds)
    limits = cfg.limits
    frontier = _Frontier(cfg.ray.num_actors)
    for item in state.frontier():
        frontier.push(item)
    pages = sum(1 for r in state.rows if r["kind"] == "page" and r["error"] not in NOT_FETCHED)
    body_bytes = sum(r["bytes"] or 0 for r in state.rows if r["kind"] == "page")

    hooks = fault_hook_env()  # test hooks reach the actors, wherever they run
    actor_cls = ray.remote(HostFetcher).options(num_cpus=cfg.ray.cpus_per_actor, scheduling_strategy="SPREAD",
                                                max_concurrency=1, runtime_env={"env_vars": hooks} if hooks else None)
    cfg_json = cfg.model_dump_json()

    def new_actor(i: int) -> Any:
        return actor_cls.remote(i, cfg_json, str(warc_dir.resolve()), f"s{session:02d}{uuid.uuid4().hex[:6]}")

    actors = [new_actor(i) for i in range(cfg.ray.num_actors)]
    in_flight: dict[Any, tuple[int, list[tuple[str, int, int]]]] = {}
    failures = [0] * len(actors)

    def budget_left() -> int:
        if limits.max_total_bytes is not None and body_bytes >= limits.max_total_bytes:
            return 0
        if limits.max_pages is None:
            return 1 << 62
        return limits.max_pages - pages - sum(len(items) for _, items in in_flight.values())

    try:
        while True:
            busy = {a for a, _ in in_flight.values()}
            for i in range(len(actors)):
                n = min(cfg.ray.batch_size, budget_left())
                if i in busy or n <= 0:
                    continue
                items = frontier.take(i, n)
                if items:
                    in_flight[actors[i].fetch_batch.remote(items)] = (i, items)
            if not in_flight:
                break
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            i, items = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                # The actor or its node died: its batch was never committed. A new actor
                # (new WARC file names) fetches it again; one that keeps failing stops the crawl.
                failures[i] += 1
                if failures[i] > MAX_ACTOR_FAILURES:
                    raise CrawlError(f"fetch actor {i} failed {failures[i]} times in a row, last: {exc}; "
                                     "the progress so far is kept, rerun to continue") from None
                frontier.requeue(i, items)
                ray.kill(actors[i])
                actors[i] = new_actor(i)
                continue
            failures[i] = 0
            entry = _commit(result, frontier, state, scope, cfg, session)
            journal.append(entry)
            state.apply(entry)
            pages += sum(1 for r in result["rows"] if r["error"] not in NOT_FETCHED)
            body_bytes += sum(r["bytes"] or 0 for r in result["rows"])
            if on_batch is not None:
                on_batch(entry)
        ray.get([a.close.remote() for a in actors])
    finally:
        journal.close()
        for a in actors:
            ray.kill(a)
    finalize_warcs(warc_dir, state.warc_committed)
    write_log(state.rows, out / "crawl_log.parquet")
    result_totals = totals(state.rows, len(frontier))
    seconds = time.perf_counter() - started
    write_json(out / "crawl.json", {"name": cfg.name, "seeds": len(state.seeds), "sessions": state.sessions,
                                         "totals": result_totals, "config": cfg.model_dump(mode="json"),
                                         "seconds_last_session": round(seconds, 3)}, indent=2)
    return CrawlResult(out_dir=out, totals=result_totals, warc_files=sorted(warc_dir.glob("*.warc.gz")),
                       sessions=state.sessions, resumed=resumed, seconds=seconds)


def _commit(result: dict[str, Any], frontier: _Frontier, state: CrawlState, scope: Scope, cfg: CrawlConfig,
            session: int) -> dict[str, Any]:
    """Judge a batch's links (scope, depth, redirects, seen before), queue the new ones and
    return the journal entry that makes the batch final."""
    rows = result["rows"] + result["robots_rows"]
    enqueued: list[list[Any]] = []
    seen_now: set[str] = set()
    for url, depth, redirects, _source in result["links"]:
        if url in state.seen or url in seen_now:
            continue
        seen_now.add(url)
        reason = scope.reason_out(url)
        if reason is None and depth > cfg.limits.max_depth:
            reason = "too_deep"
        if reason is None and redirects > cfg.limits.max_redirects:
            reason = "too_many_redirects"
        if reason is not None:
            rows.append(_judged_row(url, "discovered", "out_of_scope", reason, depth))
            continue
        enqueued.append([url, depth, redirects])
        frontier.push((url, depth, redirects))
    for row in rows:
        row["session"] = session
    return {"type": "batch", "rows": rows, "enqueued": enqueued, "warc": result["warc"]}
