"""Numbers in a noun phrase: numerals in any script, number words with their scales, and signs.

"3", "1,000", "٣" (Arabic-Indic), "²", "①", "Ⅻ" are numerals; "twenty-five", "a million",
"two dozen", "three hundred thousand" compose; "zero" and "no" count zero; "-3", "−3",
"minus three" are negative (``build`` refuses a negative count for a subject).
A number that is not whole ("1.5 cats", "½ cat") counts nothing: the phrase falls back to its
grammatical number, as with no number at all.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

from starvid.parsing.tokens import source_text
from starvid.parsing.vocabulary import EXPLICIT_ONE, NUMBER_WORDS, SCALE_WORDS

# Negative signs glued to a number ("-3", "−3" with U+2212, "–3" with an en dash).
NEGATIVE_SIGNS = ("-", "\u2212", "\u2013")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
# Scales that multiply the group being read ("two hundred", "a dozen") rather than the total.
_GROUP_SCALES = ("dozen", "hundred")


def numeral_value(text: str) -> Fraction | None:
    """The value of a numeral ("3", "1,000", "٣", "2.5", "²", "①", "Ⅻ"), or None."""
    t = text.replace(",", "")
    if t.isdecimal():  # any script's decimal digits; int() reads them all
        return Fraction(int(t))
    decimal = _DECIMAL.fullmatch(t)
    if decimal and decimal.group(1).isdecimal() and decimal.group(2).isdecimal():
        whole, frac = decimal.groups()
        return int(whole) + Fraction(int(frac), 10 ** len(frac))
    if len(t) == 1:  # "①", "Ⅻ", "½": one character with a numeric value
        value = unicodedata.numeric(t, None)
        return None if value is None else Fraction(value).limit_denominator(1000)
    digits = [unicodedata.digit(ch, None) for ch in t]
    if digits and None not in digits:  # superscript or circled digits in a row: "²³"
        return Fraction(int("".join(map(str, digits))))
    return None


def number_value(tok) -> int | None:
    """The whole number ``tok`` spells on its own ("3", "three", "a", "²"), or None."""
    value = numeral_value(source_text(tok))
    if value is not None:
        return int(value) if value.denominator == 1 else None
    return NUMBER_WORDS.get(tok.lower_)


def _word_or_numeral(tok) -> Fraction | None:
    value = numeral_value(source_text(tok))
    if value is None and tok.lower_ in NUMBER_WORDS:
        value = Fraction(NUMBER_WORDS[tok.lower_])
    return value


def _unsigned(tok) -> str | None:
    """``tok``'s text without a glued negative sign ("-3": "3"), or None when it has none."""
    text = source_text(tok)
    if len(text) > 1 and text.startswith(NEGATIVE_SIGNS):
        return text[1:]
    return None


def is_signed_number(tok) -> bool:
    """Whether ``tok`` is a number with a glued negative sign ("-3", "−3", "-three")."""
    unsigned = _unsigned(tok)
    return unsigned is not None and (
        numeral_value(unsigned) is not None or unsigned.lower() in NUMBER_WORDS
    )


def starts_number(tok) -> bool:
    """Whether a count may start at ``tok``: a numeral, a number word tagged as one, "no", "a"
    before a scale ("a million"), or a signed number ("-3", "−3", "-three")."""
    low = tok.lower_
    if numeral_value(source_text(tok)) is not None or is_signed_number(tok):
        return True
    if tok.pos_ == "NUM" or low in EXPLICIT_ONE or low in ("both", "dozen", "zero", "no"):
        return True
    nxt = tok.doc[tok.i + 1] if tok.i + 1 < len(tok.doc) else None
    return low in ("a", "an") and nxt is not None and nxt.lower_ in SCALE_WORDS


def number_at(doc, i: int, end: int) -> int | None:
    """The whole number the tokens from ``i`` (before ``end``) spell, negative when signed
    ("-3", "minus three", "-" glued to the number), or None when they spell none or a fraction.
    """
    sign, first = 1, doc[i]
    unsigned = _unsigned(first)
    if unsigned is not None:
        sign = -1
        value = numeral_value(unsigned)
        if value is None and unsigned.lower() in NUMBER_WORDS:
            value = Fraction(NUMBER_WORDS[unsigned.lower()])
        if value is None:
            return None
        rest = _compose(doc, i + 1, end, value, "numeral")
    else:
        if _negated(doc, i):
            sign = -1
        rest = _compose(doc, i, end, None, None)
    if rest is None or rest.denominator != 1:
        return None
    return sign * int(rest)


def _negated(doc, i: int) -> bool:
    """A "minus" before the number, or a sign token glued to it ("- 3" is a dash, not a sign)."""
    if i == 0:
        return False
    before = doc[i - 1]
    if before.lower_ == "minus":
        return True
    glued = before.text in NEGATIVE_SIGNS and before.whitespace_ == ""
    return glued and (i == 1 or doc[i - 2].whitespace_ != "")


def _compose(doc, k: int, end: int, group: Fraction | None, last: str | None) -> Fraction | None:
    """Read number words and numerals from token ``k`` on, the way they are spoken: "twenty
    five", "two hundred thousand", "a dozen". Stops at the first token that does not continue
    the number ("3 2 cats" reads 3)."""
    total = Fraction(0)
    while k < end:
        tok = doc[k]
        low = tok.lower_
        if low == "-" and last == "tens" and tok.whitespace_ == "" and k + 1 < end:
            k += 1  # "twenty-five"
            continue
        if low in SCALE_WORDS:
            scaled = (group if group is not None else 1) * SCALE_WORDS[low]
            if low in _GROUP_SCALES:
                group = scaled
            else:
                total, group = total + scaled, None
            last = "scale"
        else:
            value = _word_or_numeral(tok)
            if value is None:
                break
            if not low.isalpha():
                kind = "numeral"
            elif value >= 20 and value % 10 == 0:
                kind = "tens"
            else:
                kind = "unit"
            # After a tens word only a unit continues ("twenty five"); two numbers do not.
            after_tens = last == "tens" and kind == "unit" and value < 10
            if last not in (None, "scale") and not after_tens:
                break
            group = (group or 0) + value
            last = kind
        k += 1
    if group is None and last is None:
        return None
    return total + (group or 0)
