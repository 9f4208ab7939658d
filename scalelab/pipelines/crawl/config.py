"""Typed configuration of a crawl (`configs/crawl/*.yaml`).

Defaults are polite: one connection and one request a second per host, robots.txt obeyed,
links followed only on the seeds' hosts, HTML only.
"""

from __future__ import annotations

import re

import ipaddress
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from scalelab.core.config_fields import PlainName, Positive, PositiveInt, Section, parse_token_count
from scalelab.core.config import load_model


class PolitenessConfig(Section):
    user_agent: str = "scalelab-crawler/0.1 (+https://github.com/scalelab/scalelab)"
    # At least this long between the starts of two requests to one host (robots.txt's
    # Crawl-delay raises it when `obey_crawl_delay`).
    delay_s: float = Field(1.0, ge=0)
    max_connections_per_host: PositiveInt = 1
    obey_robots: bool = True
    obey_crawl_delay: bool = True
    # Longest Crawl-delay honoured; a robots.txt asking for more gets this.
    max_crawl_delay_s: Positive = 60.0


class ScopeConfig(Section):
    """Which discovered links are followed. A link must pass every rule that is set."""
    # seeds: only the seed URLs' hosts (host:port); domains: the seeds' hosts and their
    # subdomains; any: no host rule (allow_domains and patterns decide).
    hosts: Literal["seeds", "domains", "any"] = "seeds"
    allow_domains: list[str] = []   # also in scope, with their subdomains
    deny_domains: list[str] = []    # never, with their subdomains
    allow_patterns: list[str] = []  # regexes on the normalized URL; when set, one must match
    deny_patterns: list[str] = []   # regexes; a match is out of scope
    schemes: list[Literal["http", "https"]] = ["http", "https"]
    follow_nofollow: bool = False   # follow <a rel="nofollow"> and pages with <meta robots nofollow>
    # Hosts are resolved and only public addresses are connected to: loopback, private, link-local
    # and other reserved ones are refused (logged as private_address), redirects included.
    # true allows every address; a list of networks (["10.1.0.0/16"]) allows those.
    allow_private_networks: Union[bool, list[str]] = False

    @field_validator("allow_private_networks")
    @classmethod
    def _networks(cls, v: Union[bool, list[str]]) -> Union[bool, list[str]]:
        if isinstance(v, list):
            for n in v:
                try:
                    ipaddress.ip_network(n, strict=False)
                except ValueError as exc:
                    raise ValueError(f"{n!r} is not a network like 10.1.0.0/16: {exc}") from None
        return v

    @field_validator("allow_patterns", "deny_patterns")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:

        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a valid regex: {exc}") from None
        return v


class LimitsConfig(Section):
    max_depth: int = Field(3, ge=0)      # seeds are depth 0; links of a depth-d page are d+1
    max_pages: Optional[PositiveInt] = None  # fetches (robots.txt not counted), over all sessions
    max_page_bytes: int | str = "5M"     # larger bodies are abandoned and logged as too_large
    max_total_bytes: Optional[int | str] = None  # the crawl stops scheduling once bodies add up to this
    max_redirects: int = Field(5, ge=0)
    timeout_s: Positive = 30.0           # whole fetch: connect, headers and body
    connect_timeout_s: Positive = 10.0
    content_types: list[str] = ["text/html", "application/xhtml+xml"]

    @field_validator("max_page_bytes")
    @classmethod
    def _page_bytes(cls, v: int | str) -> int:
        return parse_token_count(v)

    @field_validator("max_total_bytes")
    @classmethod
    def _total_bytes(cls, v: Optional[int | str]) -> Optional[int]:
        return None if v is None else parse_token_count(v)


class UrlsConfig(Section):
    # Query parameters removed during normalization (fnmatch patterns): trackers that make one
    # page look like many.
    drop_query_params: list[str] = ["utm_*", "fbclid", "gclid", "mc_eid"]
    sort_query: bool = False  # reorder parameters (off: some sites treat order as meaning)


class WarcOutputConfig(Section):
    max_file_mb: Positive = 1000.0  # a WARC file is closed and a new one opened past this size
    prefix: PlainName = "crawl"    # WARC files are OUT/warc/PREFIX-<actor>-<session>-NNNNN.warc.gz


class RayConfig(Section):
    num_actors: PositiveInt = 4          # hosts are partitioned over this many fetch actors
    cpus_per_actor: float = Field(0.25, gt=0)  # fetching waits on the network, not the CPU
    fetch_threads: PositiveInt = 8       # concurrent fetches inside one actor (across its hosts)
    batch_size: PositiveInt = 16         # URLs per actor call; progress is saved after each


class CrawlConfig(Section):
    name: str = "crawl"
    politeness: PolitenessConfig = PolitenessConfig()
    scope: ScopeConfig = ScopeConfig()
    limits: LimitsConfig = LimitsConfig()
    urls: UrlsConfig = UrlsConfig()
    warc: WarcOutputConfig = WarcOutputConfig()
    ray: RayConfig = RayConfig()


# Settings a resumed crawl may change (more pages, a longer run, more actors); any other
# change would mix two different crawls in one output folder.
RESUMABLE_CHANGES = ("limits.max_pages", "limits.max_total_bytes", "ray", "warc.max_file_mb")


def load_crawl_config(path: str | Path | None, overrides: list[str] | None = None) -> CrawlConfig:
    return load_model(CrawlConfig, path, overrides)
