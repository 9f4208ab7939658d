"""Extract, clean, language ID and PII redaction on real pages and hand-made corner cases."""

from __future__ import annotations

import pytest

from scalelab.pipelines.config import CleanConfig, ExtractConfig, LanguageConfig, PiiConfig
from scalelab.pipelines.schema import new_document
from scalelab.pipelines.steps.clean import Clean
from scalelab.pipelines.steps.extract import Extract, decode
from scalelab.pipelines.steps.language import LanguageId
from scalelab.pipelines.steps.pii import PiiRedactor
from tests.conftest import DATA


def html_doc(payload: bytes, content_type: str = "text/html") -> dict:
    return new_document(id="x", source="t", content_type=content_type, raw=payload, raw_bytes=len(payload))


def handbook_text(name: str) -> str:
    d = html_doc((DATA / "handbook" / name).read_bytes())
    assert Extract(ExtractConfig())(d) is None
    return Clean(CleanConfig())(d) or d["text"]


class TestExtract:
    def test_real_page_main_content(self):
        d = html_doc((DATA / "handbook" / "en-US--sect.apt-get.html").read_bytes())
        assert Extract(ExtractConfig())(d) is None
        assert "APT is a vast project" in d["text"]
        assert "<div" not in d["text"] and d["raw"] is None

    def test_trafilatura_backend(self):
        d = html_doc((DATA / "handbook" / "en-US--sect.apt-get.html").read_bytes())
        assert Extract(ExtractConfig(backend="trafilatura"))(d) is None
        assert "APT is a vast project" in d["text"]

    def test_http_charset_wins(self):
        page = "<html><body><p>Le café est prêt, déjà servi à la française.</p></body></html>".encode("latin-1")
        assert "café" in decode(page, "text/html; charset=ISO-8859-1")

    def test_meta_charset_without_http_header(self):
        page = ('<html><head><meta charset="windows-1251"></head><body><p>Обновление системы Debian '
                'выполняется командой apt.</p></body></html>').encode("cp1251")
        assert "Обновление" in decode(page, "text/html")

    def test_unknown_charset_label_falls_back(self):
        assert "naïve" in decode("<p>naïve</p>".encode(), "text/html; charset=x-no-such-charset")

    def test_unsupported_content_type(self):
        assert Extract(ExtractConfig())(html_doc(b"\x89PNG....", "image/png")) == ("unsupported_content_type", "image/png")

    def test_empty_page(self):
        assert Extract(ExtractConfig())(html_doc(b"<html><body><script>x=1</script></body></html>")) == "empty_text"

    def test_timeout_drops_instead_of_hanging(self):
        # A large real page, many times over, against a limit no extractor can meet.
        page = (DATA / "handbook" / "en-US--sect.apt-get.html").read_bytes()
        huge = page.replace(b"</body>", b"<div>" + b"<p>apt-get install</p>" * 200000 + b"</div></body>")
        for backend in ("resiliparse", "trafilatura"):
            rejection = Extract(ExtractConfig(backend=backend, timeout_s=0.01))(html_doc(huge))
            assert rejection is not None and rejection[0] == "extract_timeout", backend


class TestClean:
    def test_mojibake_whitespace_and_nfc(self):
        broken = "The cafÃ©   is   open.\r\n\r\n\r\n\r\nCome\tin.  \n"
        assert Clean(CleanConfig()).clean(broken) == "The café is open.\n\nCome in."
        assert Clean(CleanConfig()).clean("e\u0301") == "\u00e9"

    def test_leaves_correct_text_alone(self):
        text = "“Quoted” — ﬁne, and 全角，标点。"
        assert Clean(CleanConfig()).clean(text) == text

    @pytest.mark.parametrize("encoding,pages", [
        ("latin-1", ("fr-FR--sect.selinux.html", "ru-RU--sect.after-first-boot.html", "zh-CN--sect.syslog.html")),
        ("cp1252", ("fr-FR--sect.selinux.html", "ru-RU--sect.after-first-boot.html", "zh-CN--sect.syslog.html")),
        # Latin text misread as cp1251 looks like real Cyrillic; ftfy (and so scalelab) leaves it.
        ("cp1251", ("ru-RU--sect.after-first-boot.html",)),
    ])
    def test_real_pages_broken_by_a_wrong_decode_are_repaired(self, encoding, pages):
        for name in pages:
            text = handbook_text(name)[:400]
            try:
                broken = text.encode("utf-8").decode(encoding)
            except UnicodeDecodeError:
                continue  # bytes this code page cannot decode: no such mojibake exists
            assert broken != text
            assert Clean(CleanConfig()).clean(broken) == text, (name, encoding)

    def test_fast_path_agrees_with_full_ftfy_on_clean_pages(self):
        import ftfy

        from scalelab.pipelines.steps.clean import _MOJIBAKE_ONLY, fix_mojibake

        for page in sorted((DATA / "handbook").glob("*.html")):
            text = handbook_text(page.name) + "\ufeff\x07 tail"
            assert fix_mojibake(text) == ftfy.fix_text(text, _MOJIBAKE_ONLY), page.name

    def test_empty_after_cleaning(self):
        d = new_document(id="x", source="t", text=" \n\t \n")
        assert Clean(CleanConfig())(d) == "empty_text"


class TestLanguageId:
    # Labelled by reading the pages: the folder name is not always the language.
    EXPECTED = {
        "en-US--sect.apt-get.html": "en",
        "fr-FR--sect.selinux.html": "fr",
        "fr-FR--sect.apt-get.html": "en",  # one French paragraph, then the untranslated English
        "ru-RU--sect.selinux.html": "en",  # untranslated
        "ru-RU--sect.after-first-boot.html": "ru",
        "es-ES--sect.administration-interfaces.html": "es",
        "nl-NL--sect.why-gnu-linux.html": "nl",
        "ja-JP--sect.administration-interfaces.html": "ja",
        "zh-CN--sect.syslog.html": "zh-cn",  # Chinese prose full of English command names
    }

    @pytest.mark.parametrize("name,lang", sorted(EXPECTED.items()))
    def test_real_pages_by_content(self, name, lang):
        got, score = LanguageId(LanguageConfig()).detect(handbook_text(name))
        assert got == lang and score > 0.8

    def test_deterministic_across_instances(self):
        text = handbook_text("ja-JP--sect.administration-interfaces.html")[:300]
        results = {LanguageId(LanguageConfig(seed=7)).detect(text) for _ in range(5)}
        assert len(results) == 1

    def test_keep_list_and_min_score(self):
        fr = {"text": handbook_text("fr-FR--sect.selinux.html")}
        assert LanguageId(LanguageConfig(keep=["en"]))(dict(fr)) == ("lang", "fr")
        assert LanguageId(LanguageConfig(keep=["fr", "en"]))(dict(fr)) is None
        assert LanguageId(LanguageConfig(min_score=0.5))({"text": "12345 67890"})[0] == "lang_low_score"

    def test_default_keeps_everything_and_records(self):
        d = {"text": handbook_text("ru-RU--sect.after-first-boot.html")}
        assert LanguageId(LanguageConfig())(d) is None
        assert d["lang"] == "ru" and d["lang_score"] > 0.9


class TestPii:
    r = PiiRedactor(PiiConfig())

    def test_email(self):
        text, emails, _, _ = self.r.redact("Write to debian-user@lists.debian.org or raphael@example.com.")
        assert emails == 2 and "@" not in text and text.count("<EMAIL_ADDRESS>") == 2

    def test_public_ips_only_by_default(self):
        text, _, ips, _ = self.r.redact("nameserver 8.8.8.8; gateway 192.168.0.1; loopback 127.0.0.1; 2001:4860:4860::8888")
        assert ips == 2 and "192.168.0.1" in text and "127.0.0.1" in text and "8.8.8.8" not in text
        all_ips = PiiRedactor(PiiConfig(keep_non_public_ips=False))
        assert all_ips.redact("gateway 192.168.0.1")[2] == 1

    def test_not_ips(self):
        text = "Debian 12.2.0, at 12:30:45, release 1.2.3.4.5, value 300.1.1.1, an empty ::"
        assert self.r.redact(text) == (text, 0, 0, 0)

    def test_phones(self):
        text, _, _, phones = self.r.redact("Call +1 415-555-0132 or (415) 555-0132 or +33 1 42 68 53 00.")
        assert phones == 3 and "555" not in text

    def test_not_phones(self):
        text = "ISBN 978-2-212-13432-6, the years 1999-2004, port 8080, and apt 2.6.1-1"
        assert self.r.redact(text)[3] == 0

    def test_switches(self):
        r = PiiRedactor(PiiConfig(email=False))
        assert r.redact("a@example.com")[1] == 0
