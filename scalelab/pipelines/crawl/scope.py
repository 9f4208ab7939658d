"""Whether a discovered URL is followed: hosts, domains and patterns from `scope`."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from scalelab.pipelines.crawl.config import ScopeConfig
from scalelab.pipelines.crawl.urls import host_key, hostname


def _in_domain(host: str, domain: str) -> bool:
    domain = domain.lower().lstrip(".")
    return host == domain or host.endswith("." + domain)


class Scope:
    def __init__(self, cfg: ScopeConfig, seeds: list[str]):
        self.cfg = cfg
        self.seed_hosts = {host_key(u) for u in seeds}
        self.seed_domains = {hostname(u) for u in seeds}
        self.allow = [re.compile(p) for p in cfg.allow_patterns]
        self.deny = [re.compile(p) for p in cfg.deny_patterns]

    def reason_out(self, url: str) -> str | None:
        """None if `url` is in scope, else why not (the crawl log's reason)."""
        cfg = self.cfg
        if urlsplit(url).scheme not in cfg.schemes:
            return "scheme"
        host = hostname(url)
        if any(_in_domain(host, d) for d in cfg.deny_domains):
            return "denied_domain"
        if any(p.search(url) for p in self.deny):
            return "denied_pattern"
        if self.allow and not any(p.search(url) for p in self.allow):
            return "no_allowed_pattern"
        if any(_in_domain(host, d) for d in cfg.allow_domains):
            return None
        if cfg.hosts == "seeds" and host_key(url) not in self.seed_hosts:
            return "other_host"
        if cfg.hosts == "domains" and not any(_in_domain(host, d) for d in self.seed_domains):
            return "other_domain"
        return None
