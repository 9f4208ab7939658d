"""Clean: repair mojibake, normalize Unicode, fold runs of whitespace (keeping line structure)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

try:  # the regex parser, to read ftfy's badness regex
    from re import _constants as sre_constants, _parser as sre_parse
except ImportError:  # Python 3.10
    import sre_constants, sre_parse  # type: ignore[no-redef]

import ftfy
from ftfy import fixes
from ftfy.badness import BADNESS_RE
from ftfy.chardata import CONTROL_CHARS

from scalelab.pipelines.config import CleanConfig
from scalelab.pipelines.steps import Rejection

# Whitespace other than newlines, wherever it is not already one plain space: a run of two or more,
# or one other character (a tab, a no-break space). Each becomes one space; lone spaces, most of
# them, are not matched at all.
_SPACES_RE = re.compile(r"[^\S\n]{2,}|[^\S \n]")
# Only repair broken encodings; ftfy's other defaults would rewrite correct text (curly quotes,
# full-width punctuation, ligatures), and Unicode normalization is this step's own setting.
_MOJIBAKE_ONLY = ftfy.TextFixerConfig(
    unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
    fix_character_width=False, normalization=None, explain=False,
)

# ftfy repairs an encoding only where its badness regex matches (per line); what else it does
# (C1 controls, line breaks, surrogates, terminal escapes, control characters) is a chain of
# character-level fixes that ftfy applies per line, repeated until nothing changes. So a text goes
# through ftfy whole only if the regex could match. The regex is 37 alternatives, each needing a
# character from each of some classes that hold no ASCII: only the alternatives whose classes all
# meet the text's distinct characters are searched, each alone, which is a set operation at C
# speed for most texts. The others get ftfy's own chain of fixes on the whole text, skipping fixes
# with nothing to fix: ftfy's output byte for byte (tests/pipelines/test_clean_conformance.py).
_CHARACTER_FIXES = (fixes.fix_c1_controls, fixes.fix_line_breaks, fixes.fix_surrogates,
                    fixes.remove_terminal_escapes, fixes.remove_control_chars)
# What the chain acts on: C1 controls, \r and Unicode line breaks, surrogates, ESC, control characters.
_NEEDS_CHARACTER_FIXES = re.compile(
    r"[\x80-\x9f\r\u2028\u2029\ud800-\udfff\x1b" + "".join(f"\\U{c:08x}" for c in sorted(CONTROL_CHARS)) + "]")


@dataclass(frozen=True)
class _Alternative:
    """One alternative of ftfy's badness regex, and the classes a match needs a character of."""

    pattern: re.Pattern
    needs: tuple[frozenset[str], ...]

    def may_match(self, chars: set[str]) -> bool:
        return all(not c.isdisjoint(chars) for c in self.needs)


def _required_classes(pattern: str) -> tuple[frozenset[str], ...]:
    """The character sets of the pattern's mandatory single-character items without ASCII."""
    classes = []
    for op, arg in sre_parse.parse(pattern, re.VERBOSE):
        chars: set[str] = set()
        if op is sre_constants.LITERAL:
            chars = {chr(arg)}
        elif op is sre_constants.IN:
            for item_op, item in arg:
                if item_op is sre_constants.LITERAL:
                    chars.add(chr(item))
                elif item_op is sre_constants.RANGE:
                    chars.update(chr(c) for c in range(item[0], item[1] + 1))
                else:  # a category (\s, \w) or a negation: no finite set
                    chars = set()
                    break
        if chars and all(ord(c) > 0x7F for c in chars):
            classes.append(frozenset(chars))
    return tuple(classes)


def _badness_alternatives() -> list[_Alternative]:
    """ftfy's badness regex cut at its top-level `|` lines, each alternative multi-line (ftfy
    judges each line alone, so `^` is any line's start). If the cut does not give the parser's
    alternatives, the regex stays whole and always runs."""
    pieces = re.split(r"\n\s*\|\s*\n", BADNESS_RE.pattern)
    (op, (_, parsed)), = list(sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags))
    if op is not sre_constants.BRANCH or len(pieces) != len(parsed):
        pieces = [BADNESS_RE.pattern]
    flags = BADNESS_RE.flags | re.MULTILINE
    return [_Alternative(re.compile(p, flags), _required_classes(p) if len(pieces) > 1 else ()) for p in pieces]


_ALTERNATIVES = _badness_alternatives()


def _may_hold_mojibake(text: str) -> bool:
    if text.isascii():
        return False
    chars = set(text)
    return any(a.may_match(chars) and a.pattern.search(text) for a in _ALTERNATIVES)


def _character_fixes(text: str) -> str:
    if not _NEEDS_CHARACTER_FIXES.search(text):
        return text  # every fix of the chain would leave it as it is
    while True:
        before = text
        for fix in _CHARACTER_FIXES:
            text = fix(text)
        if text == before:
            return text


def fix_mojibake(text: str) -> str:
    if not _may_hold_mojibake(text):
        fixed = _character_fixes(text)
        if fixed == text or not _may_hold_mojibake(fixed):
            return fixed
    return ftfy.fix_text(text, _MOJIBAKE_ONLY)


_BLANK_LINES_RE = re.compile(r"\n{3,}")


class Clean:
    stage = "clean"

    def __init__(self, cfg: CleanConfig):
        self.cfg = cfg

    def clean(self, text: str) -> str:
        if self.cfg.fix_mojibake:
            text = fix_mojibake(text)
        if self.cfg.unicode_form != "none":
            text = unicodedata.normalize(self.cfg.unicode_form, text)
        if self.cfg.collapse_whitespace:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            # Runs of spaces become one, then the one space left at either edge of a line goes:
            # each line stripped, in passes over the whole text instead of one per line.
            text = _SPACES_RE.sub(" ", text).replace(" \n", "\n").replace("\n ", "\n")
            text = _BLANK_LINES_RE.sub("\n\n", text).strip()
        return text

    def __call__(self, doc: dict[str, Any]) -> Rejection:
        doc["text"] = self.clean(doc["text"])
        return None if doc["text"] else "empty_text"
