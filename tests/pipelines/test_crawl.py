"""The crawler end to end on Ray, against web sites served by this test on 127.0.0.1 only:
scope, robots.txt, per-host delay, one actor per host, WARCs that read back and feed a corpus
build, and a crawl killed part way that resumes without fetching a committed page again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from scalelab.pipelines.build import build_corpus
from scalelab.pipelines.config import CorpusConfig
from scalelab.pipelines.crawl.config import load_crawl_config
from scalelab.pipelines.crawl.crawl import run_crawl
from scalelab.pipelines.crawl.host_fetcher import owner_of
from scalelab.core.config import ConfigError
from tests.pipelines.crawl_site import FETCHED, start_site

REPO = Path(__file__).resolve().parents[2]
DELAY = 0.25
# The test sites are on loopback, which a crawl refuses unless told otherwise.
SETTINGS = ["scope.allow_private_networks=true", f"politeness.delay_s={DELAY}", "limits.max_depth=2", "limits.timeout_s=1",
            "limits.max_page_bytes=100k", "ray.num_actors=2", "ray.batch_size=4"]


@pytest.fixture(scope="module")
def sites():
    a, b = start_site(), start_site()
    yield a, b
    a.close()
    b.close()


def warc_records(files: list[Path]) -> list[tuple[str, str, str]]:
    """(file, record type, target URI) of every record; fails on any unreadable file."""
    out = []
    for f in files:
        with open(f, "rb") as fh:
            for r in ArchiveIterator(fh):
                r.content_stream().read()
                out.append((f.name, r.rec_type, r.rec_headers.get_header("WARC-Target-URI")))
    return out


@pytest.fixture(scope="module")
def two_site_crawl(ray_local, sites, tmp_path_factory):
    a, b = sites
    out = tmp_path_factory.mktemp("crawl")
    seeds = out / "seeds.txt"
    seeds.write_text(f"# two hosts\n{a.base}/\n{b.base}\nnot a url\n")
    result = run_crawl(load_crawl_config(None, SETTINGS), seeds, out / "out")
    return result, out / "out"


def test_only_in_scope_allowed_pages_are_fetched_each_once(two_site_crawl, sites):
    result, out = two_site_crawl
    for site in sites:
        counts = Counter(site.paths())
        assert set(counts) == FETCHED | {"/robots.txt", "/slow", "/huge", "/data.bin"}
        assert max(counts.values()) == 1, counts                       # each once; robots.txt too
        assert "/private/secret.html" not in counts                     # robots.txt obeyed
        assert "/deep/2.html" not in counts and "/never-followed.html" not in counts  # depth, nofollow
        assert all(ua.startswith("scalelab-crawler/") for _, _, ua in site.requests)
    log = pq.read_table(out / "crawl_log.parquet").to_pylist()
    by_url = {(r["url"], r["kind"]): r for r in log}
    a = sites[0].base
    assert by_url[(a + "/private/secret.html", "page")]["error"] == "robots"
    assert by_url[(a + "/slow", "page")]["error"] == "timeout"
    assert by_url[(a + "/huge", "page")]["error"] == "too_large"
    assert by_url[(a + "/data.bin", "page")]["error"] == "content_type"
    assert by_url[(a + "/missing", "page")]["status"] == 404 and by_url[(a + "/missing", "page")]["error"] == "http_4xx"
    assert by_url[(a + "/error", "page")]["error"] == "http_5xx"
    assert by_url[(a + "/redirect", "page")]["redirect"] == a + "/c.html"
    assert by_url[("http://outside.invalid/page", "discovered")]["detail"] == "other_host"
    assert by_url[(a + "/deep/2.html", "discovered")]["detail"] == "too_deep"
    assert sum(r["kind"] == "seed" and r["error"] == "invalid_url" for r in log) == 1
    t = result.totals
    assert t["fetched"] == 2 * len(FETCHED) and t["skipped_robots"] == 2 and t["skipped_content_type"] == 2
    assert t["failed_by_reason"] == {"http_4xx": 2, "http_5xx": 2, "timeout": 2, "too_large": 2}
    assert t["left_in_frontier"] == 0 and t["invalid_seeds"] == 1


def test_per_host_delay_holds(two_site_crawl, sites):
    for site in sites:
        times = sorted(t for t, _, _ in site.requests)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= DELAY - 0.02, gaps


def test_each_host_is_crawled_by_one_actor(two_site_crawl, sites):
    _, out = two_site_crawl
    log = pq.read_table(out / "crawl_log.parquet").to_pylist()
    for site in sites:
        actors = {r["actor"] for r in log if r["host"] == site.host and r["kind"] in ("page", "robots")}
        assert actors == {owner_of(site.host, 2)}
        files = {r["warc_file"] for r in log if r["host"] == site.host and r["warc_file"]}
        assert all(f.startswith(f"crawl-{owner_of(site.host, 2):03d}-") for f in files)


def test_warcs_read_back_and_feed_a_corpus_build(two_site_crawl, sites, tmp_path):
    result, out = two_site_crawl
    assert not list((out / "warc").glob("*.open"))
    records = warc_records(result.warc_files)
    files = {f for f, _, _ in records}
    assert {t for f, t, _ in records if (f, t) == (f, "warcinfo")} == {"warcinfo"}
    assert [t for f, t, _ in records if f == sorted(files)[0]][0] == "warcinfo"
    responses = Counter(u for _, t, u in records if t == "response")
    expected = {s.base + p for s in sites for p in FETCHED}
    assert set(responses) == expected and max(responses.values()) == 1
    assert Counter(t for _, t, _ in records)["request"] == len(expected)

    cfg = CorpusConfig.model_validate({"name": "crawled", "inputs": [{"path": str(out / "warc")}],
                                       "shards": {"enabled": False}, "dedup": {"minhash": {"enabled": False}}})
    build = build_corpus(cfg, tmp_path / "corpus")
    assert build.stats.balanced() and build.stats.documents_in == len(records)
    drops = {(d["stage"], d["reason"]): d["documents"] for d in build.stats.drops}
    assert drops[("read", "http_status")] == 2 * 3          # the 302, 404 and 500 of each site
    assert drops[("read", "not_a_document")] == len(expected) + len(files)  # requests and warcinfo
    kept = pq.read_table(tmp_path / "corpus" / "documents").column("url").to_pylist()
    assert len(kept) >= 5 and set(kept) <= {s.base + p for s in sites for p in FETCHED - {"/redirect", "/missing", "/error"}}


def _journal_batches(out: Path) -> int:
    path = out / "state" / "journal.jsonl"
    return path.read_bytes().count(b'"type":"batch"') if path.exists() else 0


def test_a_killed_crawl_resumes_without_refetching(ray_local, tmp_path):
    site = start_site()
    try:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(site.base + "/\n")
        out = tmp_path / "out"
        settings = SETTINGS[:-2] + ["ray.num_actors=1", "ray.batch_size=1", "politeness.delay_s=0.3"]
        cmd = [sys.executable, "-m", "scalelab.cli", "crawl", str(seeds), "--out", str(out)]
        for s in settings:
            cmd += ["--set", s]
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while _journal_batches(out) < 5 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-crawl
        proc.wait()
        time.sleep(0.5)
        before = list(site.paths())
        committed = {r["url"].removeprefix(site.base) for r in _committed_rows(out)}
        assert 4 <= len(committed) < len(FETCHED)

        runner = CliRunner()
        resumed = runner.invoke(__import__("scalelab.cli", fromlist=["app"]).app,
                                ["crawl", str(seeds), "--out", str(out)] + [x for s in settings for x in ("--set", s)])
        assert resumed.exit_code == 0, resumed.output
        assert "(resumed)" in resumed.output and "skipped by robots.txt" in resumed.output
        counts = Counter(p for p in site.paths() if p != "/robots.txt")
        for path in committed:
            assert counts[path] == 1, (path, before)          # committed before the kill: never again
        assert max(counts.values()) <= 2                      # at most the batch in flight at the kill
        warcs = sorted((out / "warc").glob("*.warc.gz"))
        responses = Counter(u.removeprefix(site.base) for _, t, u in warc_records(warcs) if t == "response")
        assert set(responses) == FETCHED and max(responses.values()) == 1   # no page lost, none twice
        assert not list((out / "warc").glob("*.open"))
    finally:
        site.close()


def _committed_rows(out: Path) -> list[dict]:
    from scalelab.pipelines.crawl.journal import Journal

    return [r for r in Journal(out).replay().rows if r["kind"] == "page" and r["status"] is not None]


def test_a_different_config_is_refused_then_force_starts_over(two_site_crawl, sites, tmp_path):
    _, out = two_site_crawl
    seeds = out.parent / "seeds.txt"
    with pytest.raises(ConfigError, match=r"scope\.hosts"):
        run_crawl(load_crawl_config(None, SETTINGS + ["scope.hosts=any"]), seeds, out)
    other_seeds = tmp_path / "seeds.txt"
    other_seeds.write_text(sites[0].base + "/b.html\n")
    with pytest.raises(ConfigError, match="seeds"):
        run_crawl(load_crawl_config(None, SETTINGS), other_seeds, out)
    # Limits may change on resume: a finished crawl given more pages has nothing left to do.
    again = run_crawl(load_crawl_config(None, SETTINGS + ["limits.max_pages=1000"]), seeds, out)
    assert again.resumed and again.totals["fetched"] == 2 * len(FETCHED)
    fresh = run_crawl(load_crawl_config(None, SETTINGS + ["limits.max_pages=2"]), other_seeds, tmp_path / "o2")
    assert fresh.totals["fetched"] == 2 and fresh.totals["left_in_frontier"] > 0


def test_a_dead_actor_is_replaced_and_no_page_is_lost_or_doubled(ray_local, tmp_path, monkeypatch):
    """The fetch actor SIGKILLs itself after writing a batch's WARC records, before the batch is
    committed: a new actor fetches the batch again, and the dead actor's file is cut back."""
    site = start_site()
    try:
        marker = tmp_path / "died"
        monkeypatch.setenv("SCALELAB_PIPELINE_FAULT", "crawl:actor-000-batch-2:kill")  # after one committed batch
        monkeypatch.setenv("SCALELAB_PIPELINE_FAULT_MARKER", str(marker))
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(site.base + "/\n")
        settings = SETTINGS[:-2] + ["ray.num_actors=1", "ray.batch_size=3", "politeness.delay_s=0.05"]
        result = run_crawl(load_crawl_config(None, settings), seeds, tmp_path / "out")
        assert marker.exists()
        responses = Counter(u.removeprefix(site.base) for _, t, u in warc_records(result.warc_files) if t == "response")
        assert set(responses) == FETCHED and max(responses.values()) == 1
        # Both incarnations' files remain; the dead one's is cut back to its committed batch.
        assert len({f.name.rsplit("-", 1)[0] for f in result.warc_files}) == 2
        requests = Counter(p for p in site.paths() if p != "/robots.txt")
        assert requests["/"] == 1                  # committed in batch 1: never again
        assert max(requests.values()) == 2         # batch 2 died uncommitted: fetched again
        assert result.totals["fetched"] == len(FETCHED)
    finally:
        site.close()


def test_a_crawl_refuses_private_addresses_unless_allowed(ray_local, tmp_path):
    """Loopback sites stand in for an intranet: with the default config the crawl never opens a
    connection to them, and says so; a redirect from an allowed host to another loopback address
    is refused the same way; with the flag on, the same crawl fetches them."""
    allowed, other = start_site("127.0.0.1"), start_site("127.0.0.2")
    try:
        quick = ["politeness.delay_s=0.05", "limits.max_depth=0", "limits.timeout_s=1", "ray.num_actors=1",
                 "scope.hosts=any"]
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"{allowed.base}/\n{allowed.base}/goto?{other.base}/b.html\n")

        off = run_crawl(load_crawl_config(None, quick), seeds, tmp_path / "off")
        assert allowed.connections == 0 and other.connections == 0
        log = pq.read_table(tmp_path / "off" / "crawl_log.parquet").to_pylist()
        pages = {r["url"]: r for r in log if r["kind"] == "page"}
        assert {r["error"] for r in pages.values()} == {"private_address"}
        assert "127.0.0.1 (loopback)" in pages[allowed.base + "/"]["detail"]
        assert off.totals["refused_private_address"] == 2 and off.totals["fetched"] == 0

        only_first = quick + ["scope.allow_private_networks=[127.0.0.1/32]"]
        redirected = run_crawl(load_crawl_config(None, only_first), seeds, tmp_path / "redirect")
        log = pq.read_table(tmp_path / "redirect" / "crawl_log.parquet").to_pylist()
        target = next(r for r in log if r["url"] == other.base + "/b.html")
        assert target["error"] == "private_address" and "127.0.0.2 (loopback)" in target["detail"]
        assert other.connections == 0 and redirected.totals["redirects"] == 1
        assert redirected.totals["refused_private_address"] == 1

        on = run_crawl(load_crawl_config(None, quick + ["scope.allow_private_networks=true"]), seeds, tmp_path / "on")
        assert other.paths() == ["/robots.txt", "/b.html"] and on.totals["refused_private_address"] == 0
    finally:
        allowed.close()
        other.close()
