"""Control characters out of a prompt, before anything reads it, at the same character offsets.

Terminal escape sequences ("\\x1b[31m") and other control characters would otherwise end up
inside nouns and reach the terminal and the reports. Each becomes a space, one for one, so every
character offset into the cleaned prompt is the offset into the input: the pipeline maps words to
CLIP tokens by their character span in the prompt. Tabs and line breaks are ordinary whitespace.

HTML markup ("<b>", "</div>", "&amp;", a whole "<script>...</script>") is blanked the same way
(``blank_markup``): pasted from a web page, its tag names would otherwise become planned objects.

``plain_numerals`` makes the copy spaCy reads: the tagger knows ASCII digits, not "⑫" or "²".
"""

from __future__ import annotations

import re
import unicodedata

# ECMA-48 sequences: CSI (ESC [ or the C1 byte 0x9b) with parameters, OSC (ESC ]) up to its
# terminator, and the two-character escapes (ESC followed by one byte).
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]"
)
# Bidirectional embeddings, overrides and isolates: they reorder what a terminal shows.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# HTML: script and style elements with their content, comments, tags, and character entities.
_MARKUP = re.compile(
    r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)"
    r"|<!--.*?(?:-->|$)"
    r"|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"
    r"|&(?:[A-Za-z]{2,8}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});",
    re.IGNORECASE | re.DOTALL,
)
# Tabs and line breaks stay: spaCy reads them as whitespace and JSON escapes them.
_PLAIN_WHITESPACE = frozenset("\t\n\r")


def _is_control(ch: str) -> bool:
    if ch in _PLAIN_WHITESPACE:
        return False
    return unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS


def blank_control_characters(text: str) -> tuple[str, bool]:
    """``text`` with escape sequences and control characters (not tabs and line breaks)
    replaced by spaces, one for one, and whether anything was replaced."""
    if text.isprintable():  # the common case: nothing to do
        return text, False
    blanked = _ESCAPE_SEQUENCE.sub(lambda m: " " * len(m.group()), text)
    cleaned = "".join(" " if _is_control(ch) else ch for ch in blanked)
    return cleaned, cleaned != text


def blank_markup(text: str) -> tuple[str, list[str]]:
    """``text`` with HTML tags, comments, script and style elements and character entities
    replaced by spaces, one for one, and the markup removed (each piece once, at most 5 named)."""
    if "<" not in text and "&" not in text:  # the common case: nothing to do
        return text, []
    found: list[str] = []

    def blank(m: re.Match[str]) -> str:
        piece = " ".join(m.group().split())
        found.append(piece if len(piece) <= 30 else piece[:27] + "...")
        return " " * len(m.group())

    return _MARKUP.sub(blank, text), list(dict.fromkeys(found))[:5]


def plain_numerals(text: str) -> str:
    """``text`` with every numeral character outside ASCII ("²", "⑫", "Ⅻ", "٣") replaced by
    "3", one for one, for the tagger to read as a number; counts read the prompt's own
    characters ("⑫ cats" counts 12)."""
    if text.isascii():
        return text
    return "".join(
        "3" if not ch.isascii() and unicodedata.category(ch) in ("Nd", "No", "Nl") else ch
        for ch in text
    )
