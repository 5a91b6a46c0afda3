"""Normalisation of extracted answers (compatible in spirit with Qwen2.5-Math ``strip_string``).

Pure string functions, linear-time regular expressions only.  The normal form is used for the string fast
path and as the input of the structural parser in :mod:`mindthegap.grading.compare`.  Differences from the
harness, on purpose: unit words are dropped only when they follow a number (the harness deletes any
``a``/``s``/``east`` token anywhere, which turns ``\\text{east}`` into the empty string and ``\\frac{a}{b}`` into
``\\frac{}{b}``); ``and``/``or`` between answers become list separators instead of being deleted.
A word that holds no number never becomes one: number words only (``two``, not ``none``), a unit glued to a
number only when it is a known unit word (``5cm``, not ``2k``), a single letter only after a space. Stray
characters after an answer (``\\\\``, a lone ``\\``, a ``}`` that closes nothing, ``\\!``, ``.``) are dropped.
"""

from __future__ import annotations

import re

__all__ = ["normalize", "strip_math_delims", "has_percent", "WORD_NUMBERS"]

# Unit words that may follow a number (plural forms are added below).  Lower-case comparison.
_UNITS = {
    "mile", "miles", "mph", "kmph", "kmh", "km", "m", "cm", "mm", "nm", "ft", "feet", "foot", "inch", "inches",
    "yard", "yards", "meter", "metre", "meters", "metres", "kg", "g", "gram", "grams", "mg", "lb", "lbs",
    "pound", "pounds", "ounce", "ounces", "oz", "liter", "litre", "l", "ml", "gallon", "gal", "s", "sec",
    "second", "min", "minute", "hour", "hr", "h", "day", "week", "month", "year", "yr", "degree", "deg",
    "radian", "rad", "unit", "sq", "square", "cubic", "cu", "dollar", "dollars", "cent", "cents", "yuan",
    "euro", "euros", "rs", "rupee", "people", "person", "times", "ways", "way", "points", "point", "students",
    "student", "apples", "apple", "hours", "days", "minutes", "seconds", "weeks", "months", "years",
    "percent", "pct", "percentage", "mathrm", "j", "joule", "joules", "ev", "kev", "mev", "n", "pa", "k",
    "w", "kw", "hz", "v", "a", "ohm", "ohms", "erg", "ergs", "mol", "au", "pc", "ly", "arcsec", "arcmin",
}
_UNITS |= {u + "s" for u in list(_UNITS)}
# single letters accepted as units only after a space ("5 m"; "2k" and "3m" are products): the letters that the
# harness's unit list also drops. k, n, j, w, v are far more often variables than kelvin, newton, joule ...
_SINGLE_LETTER_UNITS = {"m", "g", "s", "h", "l", "a"}

WORD_NUMBERS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000",
}  # as the harness's word2number: number words only ("none" is an answer, not 0)

_TEXT_CMDS = r"(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mbox|operatorname|rm|bf)"
_RE_DOUBLE_BS_CMD = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z]{2})")
_RE_LITERAL_NEWLINE = re.compile(r"\\n(?![a-zA-Z])")
_RE_THOUSANDS_BANG = re.compile(r"(\d),\\!\s*(?=\d{3}(?!\d))")
_RE_SPACES_CMD = re.compile(r"(?<!\\)\\(?:quad|qquad|,|;|:|\s|!|enspace|thinspace)")
_RE_TEXT_CONNECTIVE = re.compile(r"\\" + _TEXT_CMDS + r"\s*\{\s*(?:,\s*)?(?:and|or)\s*\}", re.I)
_RE_WORD_CONNECTIVE = re.compile(
    r"(?:(?<=\s)|(?<=[)\]}$]))(?:and|or)(?=\s|[(\[{$\\])|(?<=[\d)\]}])(?:and|or)(?=[A-Za-z(\[{\\$-])", re.I
)
_RE_TRAILING_TEXT_UNIT = re.compile(
    r"^(?P<pre>.*?[\d}\w)])\s*\\" + _TEXT_CMDS + r"\s*\{(?P<unit>[^{}]*)\}(?:\^\{?\d\}?)?\s*\.?$"
)
_RE_TEXT_UNWRAP = re.compile(r"\\" + _TEXT_CMDS + r"\s*\{([^{}]*)\}")
_RE_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree")
_RE_PERCENT = re.compile(r"\\%|%")
_RE_PLAIN_UNIT = re.compile(r"^(?P<pre>[^a-zA-Z]*?(?:\\[a-zA-Z]+[^a-zA-Z]*?)*)(?P<sp>\s*)(?P<unit>[a-zA-Z]+(?:\s+[a-zA-Z]+)*)(?:\^\{?[23]\}?|²|³)?\.?$")
_RE_SQRT_BARE = re.compile(r"\\sqrt\s*([0-9a-zA-Z])")
_RE_FRAC_BARE2 = re.compile(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])")
_RE_FRAC_BARE1 = re.compile(r"\\frac\s*([0-9a-zA-Z])\s*(?=\{)")
_RE_FRAC_BARE_DEN = re.compile(r"\\frac\s*(\{[^{}]*\})\s*([0-9a-zA-Z])")
_RE_SIMPLE_SLASH = re.compile(r"^(-?)(\d+)/(\d+)$")
_RE_THOUSANDS_NUM = re.compile(r"^([-+]?)([1-9]\d{0,2}(?:,\d{3})+)(\.\d+)?$")
_RE_TRAIL_ZERO = re.compile(r"(\d)\.0+(?!\d)")
_RE_CMD_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9])")
_RE_WS = re.compile(r"\s+")
_RE_SCRIPT_SPACE = re.compile(r"([_^])([0-9a-zA-Z])(?=\s+[0-9a-zA-Z(\\])")
_RE_COMMA_SPACE_DIGIT = re.compile(r"(?<=\d),\s+(?=\d)")
_RE_LEADING_DOT = re.compile(r"(?<![\d.])\.(\d)")
_RE_CHOICE = re.compile(r"^\(?([A-Ea-e])\)$|^\(([A-Ea-e])\)?$")
_RE_SET_IN = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_RE_BOXED_WRAP = re.compile(r"^\\(?:boxed|fbox)\s*\{(.*)\}$", re.S)


def strip_math_delims(s: str) -> str:
    """Remove inline/display math delimiters."""
    s = s.replace("\\[", " ").replace("\\]", " ").replace("\\(", " ").replace("\\)", " ")
    s = s.replace("\\$", "\x00")  # keep escaped dollars (currency) as a marker, removed later
    s = s.replace("$", " ")
    return s.replace("\x00", " ")


def has_percent(s: str) -> bool:
    low = s.lower()
    return "%" in s or "percent" in low or re.search(r"\bpct\b", low) is not None


def _strip_plain_unit(s: str) -> str:
    m = _RE_PLAIN_UNIT.match(s)
    if not m:
        return s
    pre, unit = m.group("pre"), m.group("unit")
    if not re.search(r"\d", pre) or pre.rstrip().endswith(("^", "_")):
        return s
    words = unit.lower().split()
    if not m.group("sp"):  # glued to the number ("5cm", "2xyz"): only a known unit word of two letters or more
        if len(words) > 1 or len(words[0]) < 2 or words[0] not in _UNITS:
            return s
    elif len(words) == 1 and len(words[0]) == 1:
        if words[0] not in _SINGLE_LETTER_UNITS:
            return s
    elif not all(w in _UNITS or len(w) >= 3 for w in words):
        return s
    if words[0] in {"and", "or"}:
        return s
    out = pre.rstrip()
    return out if out else s


_SPACING_CMDS = ("\\!", "\\,", "\\;", "\\:")


def _strip_stray_tail(s: str) -> str:
    """Drop what a response leaves behind its answer: line breaks (``\\\\``), a lone backslash (from ``\\ `` or a
    cut ``\\)``), closing braces that close nothing, full stops and spaces. None of them can end a complete answer:
    a command ends in a letter, and a brace that closes nothing belongs to the text around the answer."""
    while True:
        t = s.rstrip().rstrip(".").rstrip("\\")
        if t.endswith("}") and t.count("}") > t.count("{"):
            t = t[:-1]
        elif t.endswith(_SPACING_CMDS):  # "\\!" after a line break escapes _RE_SPACES_CMD's look-behind
            t = t[:-2]
        if t == s:
            return s
        s = t


def _normalize_once(s: str) -> str:
    s = s.strip()
    s = _RE_LITERAL_NEWLINE.sub(" ", s)
    s = s.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    s = _RE_DOUBLE_BS_CMD.sub(r"\\", s)
    m = _RE_BOXED_WRAP.match(s.strip())
    if m:
        s = m.group(1)
    s = _RE_THOUSANDS_BANG.sub(r"\1", s)
    s = s.replace("{,}", "")
    s = _RE_SPACES_CMD.sub(" ", s)
    s = s.replace("~", " ")
    s = _strip_stray_tail(strip_math_delims(s))
    for a in ("\\dfrac", "\\tfrac", "\\cfrac"):
        s = s.replace(a, "\\frac")
    s = s.replace("\\dbinom", "\\binom").replace("\\tbinom", "\\binom")
    s = re.sub(r"\\left\s*\\?\.|\\right\s*\\?\.", "", s)
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![a-zA-Z])", "", s)
    s = s.replace("\\{", "{").replace("\\}", "}").replace("\\lbrace", "{").replace("\\rbrace", "}")
    s = s.replace("\\lvert", "|").replace("\\rvert", "|").replace("\\vert", "|").replace("\\mid", "|")
    # relations
    s = re.sub(r"\\(?:leqslant|leq|le)(?![a-zA-Z])|<=|≤", r"\\le ", s)
    s = re.sub(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])|>=|≥", r"\\ge ", s)
    s = re.sub(r"\\(?:neq|ne)(?![a-zA-Z])|!=|≠", r"\\ne ", s)
    s = re.sub(r"\\lt(?![a-zA-Z])", "<", s)
    s = re.sub(r"\\gt(?![a-zA-Z])", ">", s)
    s = s.replace("\\varnothing", "\\emptyset").replace("∅", "\\emptyset")
    s = s.replace("\\infin", "\\infty").replace("∞", "\\infty")
    s = re.sub(r"(?<![a-zA-Z\\])(?:infinity|inf)(?![a-zA-Z])", r"\\infty", s)
    s = re.sub(r"(^|[(\[,{])\s*\+\s*\\infty", r"\1\\infty", s)
    s = s.replace("\\emptyset", "{}")
    # connectives between answers -> list separator
    s = _RE_TEXT_CONNECTIVE.sub(",", s)
    s = _RE_WORD_CONNECTIVE.sub(",", s)
    # degrees and percent
    s = _RE_DEGREES.sub("", s)
    s = _RE_PERCENT.sub("", s)
    # trailing \text{unit} after a value (the harness drops a trailing \text{...} when something remains)
    m = _RE_TRAILING_TEXT_UNIT.match(s.strip())
    if m and m.group("pre").strip() and m.group("unit").strip().lower() not in {"and", "or"}:
        s = m.group("pre")
    s = _RE_TEXT_UNWRAP.sub(r"\1", s)
    s = re.sub(r"\\(?:boxed|fbox)\s*\{", "{", s)
    s = s.replace("\\mathbb{R}", "\\mathbb{R}")
    s = s.replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = re.sub(r"\b(?:percentage|percent|pct)\b", "", s, flags=re.I)
    s = re.sub(r"\b(?:degrees?)\b", "", s, flags=re.I)
    s = s.strip()
    s = _strip_plain_unit(s)
    s = s.strip().rstrip(".").strip()
    s = s.lstrip(":").strip()
    # whole-string word numbers
    low = s.lower()
    if low in WORD_NUMBERS:
        s = WORD_NUMBERS[low]
    # whitespace: keep one space between a command and a following letter/digit, drop the rest
    s = _RE_SCRIPT_SPACE.sub(r"\1{\2}", s)  # "\log_2 8": keep the subscript apart from what follows
    s = _RE_CMD_SPACE.sub(lambda m: m.group(1) + "\x01", s)
    s = _RE_COMMA_SPACE_DIGIT.sub(",\x01", s)
    s = _RE_WS.sub("", s)
    s = s.replace("\x01", " ")
    s = _RE_SET_IN.sub("", s)
    m = _RE_THOUSANDS_NUM.match(s)
    if m:
        s = m.group(1) + m.group(2).replace(",", "") + (m.group(3) or "")
    s = _RE_SQRT_BARE.sub(r"\\sqrt{\1}", s)
    s = _RE_FRAC_BARE2.sub(r"\\frac{\1}{\2}", s)
    s = _RE_FRAC_BARE1.sub(r"\\frac{\1}", s)
    s = _RE_FRAC_BARE_DEN.sub(r"\\frac\1{\2}", s)
    s = _RE_LEADING_DOT.sub(r"0.\1", s)
    s = _RE_TRAIL_ZERO.sub(r"\1", s)
    m = _RE_SIMPLE_SLASH.match(s)
    if m:
        s = f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    m = _RE_CHOICE.match(s)
    if m:
        s = (m.group(1) or m.group(2)).upper()
    s = _strip_stray_tail(s.rstrip(".").rstrip("/").rstrip(",").strip())
    return s


def normalize(s: str | None) -> str:
    """Normal form of an answer string (idempotent: ``normalize(normalize(s)) == normalize(s)``)."""
    if not s:
        return ""
    s = str(s)
    if len(s) > 20000:
        s = s[:20000]
    for _ in range(8):
        t = _normalize_once(s)
        if t == s:
            return t
        s = t
    return s
