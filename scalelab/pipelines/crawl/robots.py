"""robots.txt as RFC 9309 reads it: the most specific rule wins, Allow wins a tie.

(The standard library's parser takes the first matching rule, which disagrees with Google,
Bing and the RFC on files like "Disallow: /a / Allow: /a/b".) Groups are chosen by our
product token ("scalelab-crawler" of "scalelab-crawler/0.1 (...)"), else the `*` group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

ROBOTS_CACHE_S = 24 * 3600  # RFC 9309: a cached robots.txt should not be used longer than 24 hours


@dataclass
class RobotsRules:
    rules: list[tuple[int, bool, re.Pattern[str]]] = field(default_factory=list)  # (length, allow, pattern)
    crawl_delay: Optional[float] = None
    disallow_all: bool = False  # robots.txt unreachable (5xx, network): RFC 9309 says assume so

    def allowed(self, target: str) -> bool:
        """Whether a request target (path and query) may be fetched."""
        if self.disallow_all:
            return False
        if target == "/robots.txt":
            return True
        best: Optional[tuple[int, bool]] = None
        for length, allow, pattern in self.rules:
            if pattern.match(target) and (best is None or (length, allow) > best):
                best = (length, allow)
        return True if best is None else best[1]


ALLOW_ALL = RobotsRules()
DISALLOW_ALL = RobotsRules(disallow_all=True)


def product_token(user_agent: str) -> str:
    return re.split(r"[/\s]", user_agent.strip(), maxsplit=1)[0].lower()


def _pattern(path: str) -> re.Pattern[str]:
    anchored = path.endswith("$")
    body = path[:-1] if anchored else path
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def parse_robots(text: str, user_agent: str) -> RobotsRules:
    token = product_token(user_agent)
    groups: list[tuple[set[str], list[tuple[str, str]]]] = []
    agents: set[str] = set()
    rules: list[tuple[str, str]] = []
    in_agents = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if not in_agents:  # a user-agent line after rules starts a new group
                agents, rules = set(), []
                groups.append((agents, rules))
                in_agents = True
            agents.add(value.lower())
        elif key in ("allow", "disallow", "crawl-delay"):
            if groups:
                rules.append((key, value))
            in_agents = False
    chosen = [r for a, r in groups if token in a] or [r for a, r in groups if "*" in a]
    out = RobotsRules()
    for group in chosen:
        for key, value in group:
            if key == "crawl-delay":
                try:
                    out.crawl_delay = max(out.crawl_delay or 0.0, float(value))
                except ValueError:
                    pass
            elif value:  # an empty Disallow allows everything; an empty Allow says nothing
                out.rules.append((len(value), key == "allow", _pattern(value)))
    return out
