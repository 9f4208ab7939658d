"""PII redaction: e-mail addresses, IP addresses and phone numbers become placeholders.

Never drops a document; the counts land in the document's `pii_*` fields and in the build's summary.
IP candidates are checked with `ipaddress`, so version numbers like 1.2.3 or times like 12:30:45
are left alone, and by default non-public addresses (private, loopback, documentation) are kept.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from scalelab.pipelines.config import PiiConfig
from scalelab.pipelines.steps import Rejection

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# International (+CC ...) or North American (NXX) NXX-XXXX shapes; at least 10 digits either way.
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?!\w)"
)


class PiiRedactor:
    stage = "pii"

    def __init__(self, cfg: PiiConfig):
        self.cfg = cfg

    def _ip(self, match: re.Match[str]) -> str:
        candidate = match.group(0)
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            return candidate
        if self.cfg.keep_non_public_ips and not ip.is_global:
            return candidate
        self._count_ip += 1
        return self.cfg.ip_placeholder

    def _phone(self, match: re.Match[str]) -> str:
        digits = sum(ch.isdigit() for ch in match.group(0))
        if not 10 <= digits <= 15:
            return match.group(0)
        self._count_phone += 1
        return self.cfg.phone_placeholder

    def redact(self, text: str) -> tuple[str, int, int, int]:
        emails = 0
        if self.cfg.email and "@" in text:
            text, emails = EMAIL_RE.subn(self.cfg.email_placeholder, text)
        self._count_ip = self._count_phone = 0
        if self.cfg.ip:
            text = IPV4_RE.sub(self._ip, text)
            if ":" in text:
                text = IPV6_RE.sub(self._ip, text)
        if self.cfg.phone:
            text = PHONE_RE.sub(self._phone, text)
        return text, emails, self._count_ip, self._count_phone

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        doc["text"], doc["pii_email"], doc["pii_ip"], doc["pii_phone"] = self.redact(doc["text"])
        return None
