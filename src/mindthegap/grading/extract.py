"""Answer extraction from whole model responses (Qwen2.5-Math harness order, plus a few safe extensions).

Order, as in the harness: Minerva ``final answer is $...$. I hope`` -> last ``\\boxed{}``/``\\fbox{}`` (brace
matched) -> text after ``the answer is`` -> last number.  Extensions: boxes separated only by connectives
(``\\boxed{1} and \\boxed{2}``) are joined into a list; a short bare answer is taken whole; when the response
ends with a math environment (``$x \\ge 5$``) after its last number, that environment is the answer; chat
markers (``<|im_start|>``...) end the response; after ``</think>`` only the final part is searched when it
holds an answer.
"""

from __future__ import annotations

import re

from .normalize import _UNITS

__all__ = ["last_boxed", "all_boxed", "extract_raw", "extract_gold_raw", "gold_from_benchmark"]

_STOP_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)\b")
_MATH_ENV_RE = re.compile(
    r"\$\$(?P<a>.+?)\$\$|\\\[(?P<b>.+?)\\\]|(?<![\\$])\$(?P<c>(?:\\\$|[^$\n])+?)(?<!\\)\$|\\\((?P<d>[^\n]+?)\\\)", re.S
)
_NUMBER_RE = re.compile(
    r"(?<![A-Za-z\d.,\\])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+,\d{1,2}(?![\d,])|\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|\.\d+)"
    r"(?:\s*(?:\\?%|percent))?"
)
_FILLER_RE = re.compile(
    r"\\(?:text|mbox|textbf|mathrm)\s*\{[^{}]*\}|\\(?:quad|qquad|,|;|:|!)|\\[\[\]()]|[$\s,;.]|\b(?:and|or)\b",
    re.I,
)
_MAX_SCAN = 200_000  # characters of a response that are searched (a whole response is rarely longer)


def _match_brace(text: str, open_pos: int) -> int:
    """Index just after the brace matching ``text[open_pos] == '{'``; -1 if unbalanced."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _box_at(text: str, m: re.Match) -> tuple[int, int, str] | None:
    j = m.end()
    n = len(text)
    while j < n and text[j] == " ":
        j += 1
    if j < n and text[j] == "{":
        end = _match_brace(text, j)
        if end == -1:  # unbalanced (truncated response): harness keeps the rest
            return (m.start(), n, text[j + 1 :])
        return (m.start(), end, text[j + 1 : end - 1])
    rest = text[j:]
    k = len(rest)
    for stop in ("$", "\n"):
        p = rest.find(stop)
        if p != -1:
            k = min(k, p)
    content = rest[:k].strip()
    if not content:
        return None
    return (m.start(), j + k, content)


def all_boxed(text: str) -> list[tuple[int, int, str]]:
    """All top-level ``\\boxed``/``\\fbox`` contents as ``(start, end, content)``."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    text = text[:_MAX_SCAN]
    while True:
        m = _BOX_RE.search(text, pos)
        if not m:
            break
        box = _box_at(text, m)
        if box is None:
            pos = m.end()
            continue
        out.append(box)
        pos = max(box[1], m.end())
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` / ``\\fbox{}`` (brace-matched), or None."""
    if not text:
        return None
    text = text[:_MAX_SCAN]
    for m in reversed(list(_BOX_RE.finditer(text))):
        box = _box_at(text, m)
        if box is not None:
            return box[2]
    return None


def _joined_boxes(text: str) -> str | None:
    boxes = all_boxed(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        gap = text[prev[1] : group[0][0]]
        if len(gap) > 200 or len(_FILLER_RE.sub("", gap)) > 8:
            break
        group.insert(0, prev)
    contents: list[str] = []
    for b in group:
        c = b[2].strip()
        if c and c not in contents:
            contents.append(c)
    if not contents:
        return group[-1][2]
    return ",".join(contents)


def _cut_sentence(s: str) -> str:
    """Text up to the end of the first sentence, not cutting inside math."""
    s = s.strip().lstrip(":").strip()
    m = _MATH_ENV_RE.match(s)
    if m:
        return next(g for g in m.groups() if g is not None)
    out = []
    depth = 0
    in_dollar = False
    for i, c in enumerate(s):
        if c == "$":
            in_dollar = not in_dollar
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif not in_dollar and depth <= 0:
            if c == "\n" or (c == "." and (i + 1 == len(s) or s[i + 1] in " \n")):
                break
        out.append(c)
    return "".join(out).strip()


_BARE_WORDS = {"and", "or", "pct", "percent", "percentage", "degrees", "degree"} | _UNITS


def _is_bare(text: str) -> bool:
    """A short answer without prose: words outside math are only unit words or connectives."""
    if len(text) > 300 or "\n\n" in text.strip():
        return False
    if len(text) <= 80 and not re.search(r"\s", text.strip()):
        return True
    t = _MATH_ENV_RE.sub(" ", text)
    t = re.sub(r"\\[a-zA-Z]+\s*\{[^{}]*\}|\\[a-zA-Z]+", " ", t)
    words = re.findall(r"[A-Za-z]{2,}", t)
    return all(w.lower() in _BARE_WORDS for w in words)


def _last_env_or_number(text: str) -> str | None:
    env_end, env_content = -1, None
    for m in _MATH_ENV_RE.finditer(text):
        content = next(g for g in m.groups() if g is not None)
        if content.strip():
            env_end, env_content = m.end(), content
    num_pos, num = -1, None
    for m in _NUMBER_RE.finditer(text):
        num_pos, num = m.start(), m.group(0)
    if env_content is not None and num_pos < env_end:
        return env_content
    return num


def _cut_markers(text: str) -> str:
    for mk in _STOP_MARKERS:
        p = text.find(mk)
        if p != -1:
            text = text[:p]
    if "</think>" in text:
        after = text.rsplit("</think>", 1)[1]
        if _BOX_RE.search(after) or "answer is" in after:
            text = after
    return text


def extract_raw(text: str | None) -> str | None:
    """The raw (un-normalised) answer span of a response or bare answer, or None."""
    if text is None:
        return None
    text = _cut_markers(str(text)[:_MAX_SCAN])
    if not text.strip():
        return None
    if "final answer is $" in text and "$. I hope" in text:
        # the harness takes the first such statement; a response that corrects itself states the final one
        # last, so the last complete statement is taken
        for chunk in reversed(text.split("final answer is $")[1:]):
            if "$. I hope" in chunk:
                return chunk.split("$. I hope", 1)[0].strip()
    if _BOX_RE.search(text):
        boxed = _joined_boxes(text)
        if boxed is not None:
            return boxed
    for trigger in ("he answer is", "final answer is", "Final Answer:", "Answer:"):
        if trigger in text:
            cut = _cut_sentence(text.rsplit(trigger, 1)[1])
            if cut and _is_bare(cut):
                return cut
            if cut:
                found = _last_env_or_number(cut)
                if found:
                    return found
    if _is_bare(text):
        return text.strip()
    return _last_env_or_number(text)


def extract_gold_raw(gold: str | None) -> str | None:
    """Gold answers are bare answers, but may also be whole solutions (boxed) as in Math-Verify's suite."""
    if gold is None:
        return None
    gold = str(gold)[:_MAX_SCAN]
    if "final answer is $" in gold and "$. I hope" in gold:
        return extract_raw(gold)
    if _BOX_RE.search(gold):
        boxed = _joined_boxes(gold)
        if boxed is not None:
            return boxed
    return gold.strip()


def gold_from_benchmark(record: dict, benchmark: str) -> str:
    """Gold answer of a benchmark record, taken as the Qwen2.5-Math harness takes it."""
    b = benchmark.lower().replace("-", "_")
    if b in ("math500", "math_500", "math"):
        return str(record["answer"]).strip()
    if b in ("minerva_math", "minerva"):
        ans = last_boxed(str(record["solution"]))
        if ans is None:
            raise ValueError(f"minerva_math record without a \\boxed answer in its solution: {record.get('idx')}")
        return ans.strip()
    if b == "olympiadbench":
        fa = record["final_answer"]
        if isinstance(fa, (list, tuple)):
            fa = fa[0]
        return str(fa).strip("$").strip()
    if b in ("aime24", "aime25", "aime"):
        return str(record["answer"]).strip()
    if b in ("amc23", "amc"):
        a = record["answer"]
        if isinstance(a, float) and a.is_integer():
            return str(int(a))
        if isinstance(a, str):
            try:
                f = float(a)
                if f.is_integer():
                    return str(int(f))
            except ValueError:
                pass
        return str(a).strip()
    if b == "gsm8k":
        return str(record["answer"]).split("####")[-1].strip().replace(",", "")
    raise ValueError(
        f"unknown benchmark {benchmark!r}: expected one of math500, minerva_math, olympiadbench, aime24, amc23, gsm8k"
    )
