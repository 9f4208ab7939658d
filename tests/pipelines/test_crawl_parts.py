"""The crawler's parts without Ray: URLs, robots.txt, scope, links, one fetch, WARC files, the journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from scalelab.pipelines.crawl.addresses import AddressPolicy
from scalelab.pipelines.crawl.config import CrawlConfig, LimitsConfig, ScopeConfig, UrlsConfig, load_crawl_config
from scalelab.pipelines.crawl.fetch import fetch, new_pool
from scalelab.pipelines.crawl.host_fetcher import HostFetcher, owner_of
from scalelab.pipelines.crawl.journal import Journal
from scalelab.pipelines.crawl.links import extract_links
from scalelab.pipelines.crawl.robots import parse_robots, product_token
from scalelab.pipelines.crawl.scope import Scope
from scalelab.pipelines.crawl.urls import BadUrl, normalize_url
from scalelab.pipelines.crawl.warc_files import finalize_warcs
from scalelab.core.config import ConfigError
from tests.pipelines.crawl_site import ROBOTS, SLOW_S, start_site

U = UrlsConfig()


@pytest.fixture(scope="module")
def site():
    s = start_site()
    yield s
    s.close()


@pytest.mark.parametrize("raw, want", [
    ("HTTP://Example.COM:80/a/./b/../c?utm_source=x&b=1#frag", "http://example.com/a/c?b=1"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://h/%7euser/%2f?q=%e2", "http://h/~user/%2F?q=%E2"),   # unreserved decoded, others kept
    ("http://h/a/b/../../../c", "http://h/c"),
    ("http://h//x//y", "http://h//x//y"),                         # repeated slashes may mean something
    ("http://h/a?", "http://h/a"),
    ("http://bücher.de/", "http://xn--bcher-kva.de/"),
])
def test_normalize(raw, want):
    assert normalize_url(raw, U) == want


def test_normalize_relative_and_bad():
    assert normalize_url("../z#x", U, base="http://h/a/b/c") == "http://h/a/z"
    assert normalize_url("//other.org/p", U, base="https://h/") == "https://other.org/p"
    for bad in ("ftp://h/x", "mailto:a@b", "http://", "http://h:99999/"):
        with pytest.raises(BadUrl):
            normalize_url(bad, U)


def test_robots_most_specific_rule_wins():
    rules = parse_robots("User-agent: *\nDisallow: /a\nAllow: /a/b\nDisallow: /*.pdf$\nCrawl-delay: 2\n", "anybot/1.0")
    assert not rules.allowed("/a/x") and rules.allowed("/a/b/c") and rules.allowed("/b")
    assert not rules.allowed("/docs/x.pdf") and rules.allowed("/docs/x.pdf?download=1")
    assert rules.crawl_delay == 2.0
    assert rules.allowed("/robots.txt")
    # Our own group beats `*`; the stdlib's first-match reading would allow /private/x here.
    ours = parse_robots("User-agent: *\nAllow: /\n\nUser-agent: scalelab-crawler\nAllow: /private/open\nDisallow: /private/\n",
                        "scalelab-crawler/0.1 (+https://x)")
    assert product_token("scalelab-crawler/0.1 (+x)") == "scalelab-crawler"
    assert not ours.allowed("/private/x") and ours.allowed("/private/open.html") and ours.allowed("/other")
    site_rules = parse_robots(ROBOTS.decode(), "scalelab-crawler/0.1")
    assert not site_rules.allowed("/private/secret.html") and site_rules.allowed("/private/open.html")
    assert not parse_robots(ROBOTS.decode(), "otherbot").allowed("/")


def test_scope_rules():
    seeds = ["http://docs.example.org/", "http://127.0.0.1:8080/"]
    default = Scope(ScopeConfig(), seeds)
    assert default.reason_out("http://docs.example.org/x") is None
    assert default.reason_out("http://127.0.0.1:8080/y") is None
    assert default.reason_out("http://127.0.0.1:9090/y") == "other_host"   # another port is another host
    assert default.reason_out("http://api.example.org/") == "other_host"
    domains = Scope(ScopeConfig(hosts="domains", deny_domains=["secret.docs.example.org"],
                                deny_patterns=[r"\.pdf$"]), seeds)
    assert domains.reason_out("http://a.docs.example.org/") is None
    assert domains.reason_out("http://secret.docs.example.org/") == "denied_domain"
    assert domains.reason_out("http://docs.example.org/x.pdf") == "denied_pattern"
    allow = Scope(ScopeConfig(allow_domains=["python.org"], allow_patterns=["/3/"]), seeds)
    assert allow.reason_out("https://docs.python.org/3/library") is None
    assert allow.reason_out("https://docs.python.org/2/library") == "no_allowed_pattern"
    assert Scope(ScopeConfig(schemes=["https"]), seeds).reason_out("http://docs.example.org/") == "scheme"


def test_links_base_nofollow_and_junk():
    html = ('<html><head><base href="/docs/"></head><body><a href="a.html">a</a><a href="b" rel="nofollow">b</a>'
            '<a href="javascript:void(0)">j</a><a href="#top">t</a><area href="m.html"><iframe src="f.html">'
            '<a href="a.html">again</a><a href="unclosed')
    base, links = extract_links(html)
    assert base == "/docs/" and links == ["a.html", "m.html", "f.html"]
    assert "b" in extract_links(html, follow_nofollow=True)[1]
    assert extract_links('<meta name="robots" content="noindex, nofollow"><a href="x">x</a>')[1] == []


def test_fetch_limits_against_loopback(site):
    pool = new_pool(1, AddressPolicy(allow_all=True))  # the site is on loopback
    ua = "scalelab-crawler/test"
    limits = LimitsConfig(max_page_bytes="100k", timeout_s=1.0)
    html = ["text/html"]
    ok = fetch(pool, site.base + "/a.html", ua, limits, html)
    assert ok.status == 200 and ok.error is None and b"<a href" in ok.body and ok.content_type == "text/html"
    assert fetch(pool, site.base + "/missing", ua, limits, html).status == 404
    redirect = fetch(pool, site.base + "/redirect", ua, limits, html)
    assert redirect.status == 302 and redirect.header("Location") == "/c.html"      # not followed here
    assert fetch(pool, site.base + "/huge", ua, limits, html).error == "too_large"          # by Content-Length
    assert fetch(pool, site.base + "/huge-chunked", ua, limits, html).error == "too_large"  # while streaming
    assert fetch(pool, site.base + "/data.bin", ua, limits, html).error == "content_type"
    slow = fetch(pool, site.base + "/slow", ua, limits, html)
    assert slow.error == "timeout" and slow.seconds < SLOW_S
    gz = fetch(pool, site.base + "/gz.html", ua, limits, html)
    assert gz.body[:2] == b"\x1f\x8b" and gz.header("Content-Encoding") == "gzip"  # stored as sent
    refused = fetch(pool, "http://127.0.0.1:9/", ua, limits, html)  # the discard port: nothing listens
    assert refused.error == "connection" and refused.status is None
    assert fetch(pool, site.base + "/a.html", ua, limits, html).status == 200  # the pool survived all that


def test_host_fetcher_writes_valid_warc_and_obeys_robots(site, tmp_path):
    cfg = CrawlConfig.model_validate({"politeness": {"delay_s": 0.05}, "limits": {"timeout_s": 1, "max_page_bytes": "100k"},
                                      "scope": {"allow_private_networks": True}})
    fetcher = HostFetcher(0, cfg.model_dump_json(), str(tmp_path), "s00c0ffee")
    out = fetcher.fetch_batch([(site.base + "/a.html", 1, 0), (site.base + "/private/secret.html", 1, 0),
                               (site.base + "/gz.html", 1, 0), (site.base + "/redirect", 1, 0)])
    fetcher.close()
    rows = {r["url"].removeprefix(site.base): r for r in out["rows"]}
    assert rows["/private/secret.html"]["error"] == "robots" and "/private/secret.html" not in site.paths()
    assert rows["/redirect"]["status"] == 302 and rows["/redirect"]["redirect"] == site.base + "/c.html"
    assert (site.base + "/c.html", 1, 1, site.base + "/redirect") in out["links"]      # same depth, one hop
    assert (site.base + "/b.html", 2, 0, site.base + "/a.html") in out["links"]
    assert [r["url"] for r in out["robots_rows"]] == [site.base + "/robots.txt"]
    name, length = out["warc"]
    finalize_warcs(tmp_path, {name: length})
    with open(tmp_path / name, "rb") as fh:
        records = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
                   for r in ArchiveIterator(fh)]
    assert records[0][0] == "warcinfo"
    responses = {u.removeprefix(site.base): body for t, u, body in records if t == "response"}
    assert set(responses) == {"/a.html", "/gz.html", "/redirect"}
    assert [t for t, _, _ in records[1:]] == ["request", "response"] * 3
    assert responses["/gz.html"].startswith(b"<!doctype html>")  # content encoding undone on read


def test_finalize_cuts_to_the_committed_length(tmp_path):
    cfg = CrawlConfig()
    fetcher = HostFetcher(3, cfg.model_dump_json(), str(tmp_path), "s00abc123")
    from scalelab.pipelines.crawl.fetch import Fetched

    page = Fetched(url="http://h/1", started=0.0, status=200, reason="OK",
                   headers=[("Content-Type", "text/html")], body=b"<p>one</p>")
    fetcher.warc.write(page)
    name, committed = fetcher.warc.commit_point()
    fetcher.warc.write(Fetched(**{**page.__dict__, "url": "http://h/2"}))  # never committed
    fetcher.warc.commit_point()
    (tmp_path / "crawl-009-s01deadbe-00001.warc.gz.open").write_bytes(b"partial")  # nothing of it committed
    (tmp_path / "CC-MAIN-20180116070444-20180116090444-00000.warc.gz").write_bytes(b"not the crawl's")
    finalize_warcs(tmp_path, {name: committed})
    # Incarnations are s<session><6 hex> as the crawl names them; another tool's WARC is left alone.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "CC-MAIN-20180116070444-20180116090444-00000.warc.gz"])
    with open(tmp_path / name, "rb") as fh:
        urls = [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh) if r.rec_type == "response"]
    assert urls == ["http://h/1"]
    finalize_warcs(tmp_path, {name: committed})  # again: nothing changes
    assert (tmp_path / name).stat().st_size == committed


def test_journal_replay_ignores_a_torn_line(tmp_path):
    j = Journal(tmp_path)
    j.append({"type": "session", "config": {"a": 1}, "time": 0})
    j.append({"type": "seeds", "urls": [["http://h/", 0, 0]], "rows": []})
    row = {"url": "http://h/", "kind": "page", "bytes": 5, "error": None}
    j.append({"type": "batch", "rows": [row], "enqueued": [["http://h/x", 1, 0]], "warc": ["f.warc.gz", 100]})
    j.close()
    with open(j.path, "ab") as fh:
        fh.write(json.dumps({"type": "batch", "rows": [{**row, "url": "http://h/x"}]}).encode()[:30])
    state = Journal(tmp_path).replay()
    assert state.frontier() == [("http://h/x", 1, 0)] and state.done == {"http://h/"}
    assert state.warc_committed == {"f.warc.gz": 100} and state.sessions == 1
    assert j.path.read_bytes().endswith(b"\n")  # the torn tail is gone


def test_owner_is_stable_and_spreads():
    hosts = [f"host{i}.example.org" for i in range(200)]
    owners = [owner_of(h, 4) for h in hosts]
    assert owners == [owner_of(h, 4) for h in hosts] and set(owners) == {0, 1, 2, 3}


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "crawl.yaml"
    bad.write_text("scope:\n  deny_patterns: ['(unclosed']\nlimits:\n  max_depht: 2\n")
    with pytest.raises(ConfigError) as err:
        load_crawl_config(bad)
    assert f"{bad}: scope.deny_patterns: " in str(err.value) and f"{bad}: limits.max_depht: unknown field" in str(err.value)
    assert load_crawl_config(Path(__file__).parents[2] / "configs/crawl/default.yaml").limits.max_page_bytes == 5_000_000


@pytest.mark.parametrize("connections", [1, 2])
def test_connections_per_host_are_limited(connections, tmp_path):
    site = start_site()
    try:
        cfg = CrawlConfig.model_validate({"politeness": {"delay_s": 0, "max_connections_per_host": connections,
                                                         "obey_robots": False}, "scope": {"allow_private_networks": True}})
        fetcher = HostFetcher(0, cfg.model_dump_json(), str(tmp_path), "c")
        out = fetcher.fetch_batch([(f"{site.base}/pause/{i}", 1, 0) for i in range(6)])
        fetcher.close()
        assert [r["status"] for r in out["rows"]] == [200] * 6
        assert site.most_active == connections   # eight fetch threads, but only this many on one host
    finally:
        site.close()


def test_private_addresses_are_refused_before_any_connection(tmp_path):
    site = start_site()  # its own: the server counts every connection it accepts
    try:
        pool = new_pool(1)  # the default: public addresses only
        limits = LimitsConfig(timeout_s=1.0)
        for url in (site.base + "/a.html", f"http://localhost:{site.host.split(':')[1]}/a.html",
                    "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/"):
            got = fetch(pool, url, "scalelab-crawler/test", limits)
            assert (got.error, got.status) == ("private_address", None), url
        assert "::1 (loopback)" in got.detail
        assert "169.254.169.254 (link-local)" in fetch(pool, "http://169.254.169.254/", "t", limits).detail
        for obey_robots in (True, False):
            cfg = CrawlConfig.model_validate({"politeness": {"delay_s": 0, "obey_robots": obey_robots}})
            fetcher = HostFetcher(0, cfg.model_dump_json(), str(tmp_path), f"p{obey_robots}")
            out = fetcher.fetch_batch([(site.base + "/", 0, 0), (site.base + "/b.html", 1, 0)])
            fetcher.close()
            assert [r["error"] for r in out["rows"]] == ["private_address"] * 2
            assert all("127.0.0.1 (loopback)" in r["detail"] for r in out["rows"])
            assert [r["error"] for r in out["robots_rows"]] == (["private_address"] if obey_robots else [])
            assert out["links"] == [] and out["warc"] is None
        assert site.connections == 0 and site.paths() == []   # the server never saw a connection
    finally:
        site.close()


def test_a_redirect_to_a_private_address_is_refused(tmp_path):
    allowed, other = start_site("127.0.0.1"), start_site("127.0.0.2")
    try:
        target = other.base + "/a.html"
        for setting, expect in ((["127.0.0.1/32"], "private_address"), (True, None)):
            cfg = CrawlConfig.model_validate({"politeness": {"delay_s": 0, "obey_robots": False},
                                              "scope": {"allow_private_networks": setting}})
            fetcher = HostFetcher(0, cfg.model_dump_json(), str(tmp_path), f"r{expect}")
            [hop] = fetcher.fetch_batch([(f"{allowed.base}/goto?{target}", 0, 0)])["rows"]
            assert (hop["status"], hop["redirect"]) == (302, target)
            [row] = fetcher.fetch_batch([(target, 0, 1)])["rows"]   # the crawl schedules the target like this
            fetcher.close()
            assert row["error"] == expect
            if expect:
                assert "127.0.0.2 (loopback)" in row["detail"] and other.connections == 0
            else:
                assert row["status"] == 200 and other.paths() == ["/a.html"]
    finally:
        allowed.close()
        other.close()


@pytest.mark.parametrize("prefix", ["../outside", "/tmp/abs", "a/b", "..", ".hidden", "", "a\\b"])
def test_warc_prefix_must_be_a_plain_name(prefix):
    with pytest.raises(ConfigError, match=r"warc\.prefix: "):
        load_crawl_config(None, [f"warc.prefix={prefix}"] if prefix else ["warc.prefix=''"])


def test_allowed_networks_are_checked_at_load():
    with pytest.raises(ConfigError, match=r"scope\.allow_private_networks: 'lan' is not a network"):
        load_crawl_config(None, ["scope.allow_private_networks=[lan]"])
    assert load_crawl_config(None, ["scope.allow_private_networks=[10.1.0.0/16]"]).scope.allow_private_networks == ["10.1.0.0/16"]
