"""A fetch actor: crawls the hosts assigned to it, politely, into its own WARC files.

Every host belongs to exactly one actor (`owner_of`), so the per-host delay and connection
limit hold across the whole cluster without any coordination between actors. Inside an actor,
each host of a batch is served by at most `max_connections_per_host` threads that pass through
the host's gate; different hosts are fetched concurrently.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from scalelab.pipelines.crawl.addresses import AddressPolicy
from scalelab.pipelines.crawl.config import CrawlConfig
from scalelab.pipelines.crawl.fetch import Fetched, fetch, new_pool
from scalelab.pipelines.crawl.links import decode_html, extract_links
from scalelab.pipelines.crawl.robots import ALLOW_ALL, DISALLOW_ALL, ROBOTS_CACHE_S, RobotsRules, parse_robots
from scalelab.pipelines.crawl.urls import BadUrl, host_key, normalize_url, request_target
from scalelab.pipelines.crawl.warc_files import RotatingWarcWriter, warcinfo
from scalelab.pipelines.fault_hooks import maybe_fail

ROBOTS_REDIRECTS = 5  # RFC 9309: follow at least five redirects for robots.txt


def owner_of(host: str, num_actors: int) -> int:
    """The actor that crawls `host`: a stable hash, the same on every machine and every run."""
    return int.from_bytes(hashlib.blake2b(host.encode(), digest_size=8).digest(), "big") % num_actors


class HostGate:
    """Spaces the starts of requests to one host by `delay` seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_start = 0.0

    def wait_turn(self, delay: float) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + delay
        if start > now:
            time.sleep(start - now)


class HostFetcher:
    """Used as a Ray actor (see `crawl.py`); plain Python so it can be tested without Ray."""

    def __init__(self, index: int, cfg_json: str, warc_dir: str, incarnation: str):
        self.index = index
        self.cfg = CrawlConfig.model_validate_json(cfg_json)
        p = self.cfg.politeness
        self.pool = new_pool(p.max_connections_per_host, AddressPolicy.from_setting(self.cfg.scope.allow_private_networks))
        self.gates: dict[str, HostGate] = defaultdict(HostGate)
        self.robots: dict[str, tuple[RobotsRules, float]] = {}
        self.robots_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.robots_rows: list[dict[str, Any]] = []
        # Hosts whose robots.txt fetch was refused by the address check: their pages are too.
        self.refused: dict[str, str] = {}
        self.write_lock = threading.Lock()
        self.warc = RotatingWarcWriter(Path(warc_dir), f"{self.cfg.warc.prefix}-{index:03d}-{incarnation}",
                                       int(self.cfg.warc.max_file_mb * 2**20),
                                       warcinfo(self.cfg.name, p.user_agent, p.obey_robots))
        self.threads = ThreadPoolExecutor(self.cfg.ray.fetch_threads)
        self.batches = 0

    # -- politeness --------------------------------------------------------------------------

    def _rules(self, host_url: str) -> RobotsRules:
        host = host_key(host_url)
        with self.robots_locks[host]:
            cached = self.robots.get(host)
            if cached is not None and time.time() - cached[1] < ROBOTS_CACHE_S:
                return cached[0]
            rules = self._fetch_robots(host_url)
            self.robots[host] = (rules, time.time())
            return rules

    def _fetch_robots(self, page_url: str) -> RobotsRules:
        p = self.cfg.politeness
        url = first = normalize_url("/robots.txt", self.cfg.urls, base=page_url)
        self.refused.pop(host_key(first), None)
        for _ in range(ROBOTS_REDIRECTS + 1):
            self.gates[host_key(url)].wait_turn(p.delay_s)
            got = fetch(self.pool, url, p.user_agent, self.cfg.limits, content_types=None)
            self.robots_rows.append(self._row(got, depth=None, kind="robots"))
            if got.error == "private_address" and url == first:
                self.refused[host_key(url)] = got.detail
                return DISALLOW_ALL
            if got.error == "too_large":  # RFC 9309: parse at least 500 KiB; past our page cap, allow
                return ALLOW_ALL
            if got.error is not None or got.status is None or got.status >= 500:
                return DISALLOW_ALL      # unreachable: assume complete disallow until it answers
            if 300 <= got.status < 400 and got.header("Location"):
                try:
                    url = normalize_url(got.header("Location"), self.cfg.urls, base=url)
                except BadUrl:
                    return ALLOW_ALL
                continue
            if got.status >= 400:
                return ALLOW_ALL         # 4xx: no robots.txt, nothing disallowed
            return parse_robots(decode_html(got.body, got.header("Content-Type")), p.user_agent)
        return ALLOW_ALL

    def _delay(self, rules: RobotsRules) -> float:
        p = self.cfg.politeness
        if p.obey_crawl_delay and rules.crawl_delay is not None:
            return max(p.delay_s, min(rules.crawl_delay, p.max_crawl_delay_s))
        return p.delay_s

    # -- one URL -----------------------------------------------------------------------------

    def _row(self, got: Fetched, depth: Optional[int], kind: str = "page") -> dict[str, Any]:
        error = got.error
        if error is None and got.status is not None and got.status >= 400:
            error = f"http_{got.status // 100}xx"
        return {"url": got.url, "host": host_key(got.url), "kind": kind, "depth": depth, "status": got.status,
                "bytes": len(got.body), "error": error, "detail": got.detail or None,
                "content_type": got.content_type or None, "time": got.started, "seconds": round(got.seconds, 4),
                "actor": self.index, "warc_file": None, "redirect": None}

    def _crawl_one(self, url: str, depth: int, redirects: int) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
        p = self.cfg.politeness
        rules = self._rules(url) if p.obey_robots else ALLOW_ALL
        if not rules.allowed(request_target(url)):
            row = self._row(Fetched(url=url, started=time.time()), depth)
            refused = self.refused.get(host_key(url))
            if refused is not None:
                row.update(error="private_address", detail=refused)
            else:
                row.update(error="robots", detail="unreachable robots.txt" if rules.disallow_all else "disallowed")
            return row, []
        self.gates[host_key(url)].wait_turn(self._delay(rules))
        got = fetch(self.pool, url, p.user_agent, self.cfg.limits, self.cfg.limits.content_types)
        row = self._row(got, depth)
        if got.status is None or got.error is not None:
            return row, []
        with self.write_lock:
            row["warc_file"] = self.warc.write(got)
        links: list[tuple[str, int, int]] = []
        if 300 <= got.status < 400 and got.header("Location"):
            try:
                target = normalize_url(got.header("Location"), self.cfg.urls, base=url)
                row["redirect"] = target
                links.append((target, depth, redirects + 1))
            except BadUrl as exc:
                row["detail"] = f"bad Location: {exc}"[:300]
        elif got.status < 300 and got.body:
            base, targets = extract_links(decode_html(got.body, got.header("Content-Type")), self.cfg.scope.follow_nofollow)
            page_base = self._base_of(base, url)
            for t in targets:
                try:
                    links.append((normalize_url(t, self.cfg.urls, base=page_base), depth + 1, 0))
                except BadUrl:
                    pass  # mailto:, javascript:, malformed: not links to crawl
        return row, links

    def _base_of(self, base: Optional[str], url: str) -> str:
        """Where the page's relative links resolve: its <base href> if usable, else the page."""
        if base is None:
            return url
        try:
            return normalize_url(base, self.cfg.urls, base=url)
        except BadUrl:
            return url

    def _serve_host(self, items: list[tuple[str, int, int]], lock: threading.Lock) -> list[tuple[dict[str, Any], list[tuple[str, int, int]]]]:
        """One connection's worth of work on one host: take URLs off the host's list until it's empty."""
        done = []
        while True:
            with lock:
                if not items:
                    return done
                url, depth, redirects = items.pop(0)
            try:
                done.append(self._crawl_one(url, depth, redirects))
            except Exception as exc:  # a bug or an odd page must cost one URL, not the batch
                row = self._row(Fetched(url=url, started=time.time()), depth)
                row.update(error="crawler_error", detail=f"{type(exc).__name__}: {exc}"[:300])
                done.append((row, []))

    # -- the actor's API ---------------------------------------------------------------------

    def fetch_batch(self, batch: list[tuple[str, int, int]]) -> dict[str, Any]:
        """Crawl (url, depth, redirects) items; return log rows, discovered links and the
        WARC commit point. Nothing here is final until the driver journals it."""
        by_host: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        for item in batch:
            by_host[host_key(item[0])].append(tuple(item))  # type: ignore[arg-type]
        futures = []
        for host, items in by_host.items():
            lock = threading.Lock()
            for _ in range(min(self.cfg.politeness.max_connections_per_host, len(items))):
                futures.append(self.threads.submit(self._serve_host, items, lock))
        rows, links = [], []
        for f in futures:
            for row, found in f.result():
                rows.append(row)
                links.extend((u, d, r, row["url"]) for u, d, r in found)
        robots_rows, self.robots_rows = self.robots_rows, []
        self.batches += 1
        # Test hook: the actor dies with the batch's records written but not committed.
        maybe_fail("crawl", f"actor-{self.index:03d}-batch-{self.batches}")
        commit = self.warc.commit_point()
        self.warc.rotate_if_full()
        return {"rows": rows, "robots_rows": robots_rows, "links": links, "warc": commit}

    def close(self) -> None:
        self.warc.close()
        self.threads.shutdown(wait=True)
        self.pool.clear()
