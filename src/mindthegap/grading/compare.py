"""Equivalence of two normalised answers: string -> numeric -> tuples/intervals/sets -> matrices -> equations
-> symbolic.  Pure functions; the symbolic step is delegated to a callback (the sandboxed sympy worker)."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Callable, Optional

from .mathexpr import ParseError, TooBig, Undefined, evaluate, free_vars, has_decimal, has_sum, parse

__all__ = ["equivalent", "structure", "TooBig"]

SymFn = Optional[Callable[[str, str], Optional[bool]]]
_OPEN, _CLOSE = "([{", ")]}"
_REL_RE = re.compile(r"\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|\\ne(?![a-zA-Z])|\\approx(?![a-zA-Z])|\\sim(?![a-zA-Z])|<|>|=")
_MATRIX_BEGIN = re.compile(r"\\begin\{(?:[pbvBV]?matrix|smallmatrix)\}|\\begin\{array\}\{[^{}]*\}")
_MATRIX_END = re.compile(r"\\end\{(?:[pbvBV]?matrix|smallmatrix|array)\}")
_PM_RE = re.compile(r"\\pm(?![a-zA-Z])|\\mp(?![a-zA-Z])|±")
_DEC_LIT = re.compile(r"^-?\d*\.(\d+)$")
_INF = float("inf")

# How the items of a collection are matched, as the harness's math_equal does: bracketed tuples and intervals
# element-wise in order; a bare list "1, 2" in order too (the harness's parse_expr reads it as a Python tuple);
# sets without order (parse_expr reads "{1, 2}" as a Python set). A +- expansion (ours; the harness cannot parse
# \pm) has no order.
_ORDERED, _LIST, _UNORDERED = "ordered", "list", "unordered"

_POINTS = [
    [0.7853, 1.4142, 2.2361, 0.5772, 1.7321, 2.6458, 0.9163, 1.2599],
    [1.3247, 0.6180, 1.8393, 2.4142, 0.8660, 1.5874, 2.0801, 0.7071],
    [2.1544, 1.1892, 0.6931, 1.9129, 2.8284, 0.4343, 1.6180, 1.1447],
    [0.5236, 2.5119, 1.0986, 0.8415, 1.4427, 2.3026, 0.6366, 1.9680],
    [1.6487, 0.9487, 2.7183, 1.2840, 0.5493, 2.0, 1.3863, 0.8814],
    [2.9957, 1.7783, 0.3679, 2.2255, 1.0472, 0.7788, 1.8708, 2.4495],
]


# ------------------------------------------------------------------ structure

def _split_top(s: str, seps: str) -> list[str]:
    parts, depth, cur = [], 0, []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            # keep escaped pair together (\{ was normalised away, but \\ row separators stay)
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and c in seps:
            parts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _outer_bracket(s: str) -> bool:
    """True when s[0] opens a bracket that closes at s[-1]."""
    if len(s) < 2 or s[0] not in _OPEN or s[-1] not in _CLOSE:
        return False
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return False
        i += 1
    return depth == 0


def _strip_subscripts(s: str) -> str:
    return re.sub(r"_\{[^{}]*\}|_[A-Za-z0-9]", "", s)


def is_label(lhs: str) -> bool:
    t = _strip_subscripts(lhs)
    t = re.sub(r"\\(?:frac|text|mathrm|mathbf|overline|vec|angle|triangle|operatorname|bar|hat)", "", t)
    t = re.sub(r"(?<=[A-Za-z])\([^()]*\)", "", t)
    if re.search(r"\d|[+\-*^=<>]|\\(?:sqrt|pi|cdot|times)", t):
        return False
    return re.search(r"[A-Za-z]", t) is not None and len(lhs) <= 40


def _relation_chain(s: str):
    parts, ops = [], []
    depth = 0
    last = 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        if depth == 0:
            m = _REL_RE.match(s, i)
            if m and not (c == "\\" and s.startswith("\\left", i)):
                parts.append(s[last:i])
                ops.append(m.group(0))
                i = m.end()
                last = i
                continue
        i += 1 if c != "\\" else 1
    parts.append(s[last:])
    return parts, ops


def structure(s: str):
    """Structural reading of a normalised answer."""
    s = s.strip()
    if not s:
        return ("empty",)
    semi = _split_top(s, ";")
    if len(semi) > 1:
        items = []
        for part in semi:
            if not part.strip():
                continue
            sub = _split_top(part, ",")
            if len(sub) > 1:
                items.append(("seq", "tuple", "()", [structure(_strip_label(x)) for x in sub if x.strip()]))
            else:
                items.append(structure(part))
        return ("list", items)
    comma = _split_top(s, ",")
    if len(comma) > 1:
        return ("list", [structure(_strip_label(x)) for x in comma if x.strip()])
    if _outer_bracket(s) and not _MATRIX_BEGIN.match(s[1:]):
        inner = s[1:-1]
        sep = ","
        items = _split_top(inner, ",")
        if len(items) == 1:
            items = _split_top(inner, ";")
        if len(items) > 1:
            kind = "set" if s[0] == "{" else ("tuple" if (s[0], s[-1]) == ("(", ")") else "interval")
            if kind == "interval" and len(items) != 2:
                kind = "tuple"
            return ("seq", kind, s[0] + s[-1], [structure(x) for x in items])
        if s[0] == "{" and not inner.strip():
            return ("seq", "set", "{}", [])
        if s[0] in "{(":
            return structure(inner)
    if _outer_bracket(s) and s[0] in "([" and _MATRIX_BEGIN.match(s[1:]):
        return structure(s[1:-1])
    if s.startswith("(") and s.endswith(")") and _outer_bracket(s):
        return structure(s[1:-1])
    cup = _split_cup(s)
    if len(cup) > 1:
        return ("union", [structure(x) for x in cup])
    mb = _MATRIX_BEGIN.match(s)
    if mb:
        me = None
        for me in _MATRIX_END.finditer(s):
            pass
        if me is not None and me.end() == len(s) and len(list(_MATRIX_BEGIN.finditer(s))) == 1:
            body = s[mb.end() : me.start()]
            rows = [r for r in re.split(r"\\\\", body) if r.strip() and not re.fullmatch(r"\\hline\s*", r.strip())]
            return ("matrix", [[c.strip() for c in r.split("&")] for r in rows])
    parts, ops = _relation_chain(s)
    if ops:
        return _relation_structure(parts, ops)
    colon = _split_top(s, ":")
    if len(colon) > 1 and all(x.strip() for x in colon) and "\\colon" not in s:
        return ("seq", "tuple", "::", [structure(x) for x in colon])
    pm = _PM_RE.search(s)
    if pm:
        a, b = s[: pm.start()], s[pm.end() :]
        if "\\pm" not in b and "\\mp" not in b and "±" not in b:
            if not a.strip():
                return ("list", [structure(b), structure("-" + _wrap(b))], _UNORDERED)
            return ("list", [("expr", f"{a}+{_wrap(b)}"), ("expr", f"{a}-{_wrap(b)}")], _UNORDERED)
    return ("expr", s)


def _wrap(s: str) -> str:
    return "(" + s + ")"


def _split_cup(s: str) -> list[str]:
    out, depth, last, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and (s.startswith("\\cup", i) or c == "∪"):
            out.append(s[last:i])
            i += 4 if c == "\\" else 1
            last = i
            continue
        i += 1
    out.append(s[last:])
    return [x for x in out if x.strip()] if len(out) > 1 else [s]


def _strip_label(item: str) -> str:
    parts, ops = _relation_chain(item)
    if ops and all(o == "=" for o in ops) and len(parts) == 2 and is_label(parts[0]):
        return parts[1]
    return item


def _relation_structure(parts, ops):
    if "\\approx" in ops or "\\sim" in ops:
        k = next(j for j, o in enumerate(ops) if o in ("\\approx", "\\sim"))
        if k == 0 and len(parts) >= 2 and is_label(parts[0]):
            return structure(parts[1]) if len(parts) == 2 else _relation_structure(parts[1:], ops[1:])
        parts, ops = parts[: k + 1], ops[:k]
        if not ops:
            return structure(parts[0])
    if all(o == "=" for o in ops):
        if len(parts) >= 3:
            return structure(parts[-1])
        lhs, rhs = parts
        if is_label(lhs):
            node = structure(rhs)
            return ("labelled", lhs, node) if node[0] == "expr" else node
        if _is_const(lhs) and _is_const(rhs):  # a computation "1/2 = 10/9": its result
            return structure(rhs)
        return ("eq", lhs, rhs)
    return ("ineq", parts, ops)


# ------------------------------------------------------------------ numbers

def _decimals(s: str) -> int | None:
    m = _DEC_LIT.match(s.strip())
    return len(m.group(1)) if m else None


def _close(a, b, approx: bool) -> bool:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        if a == b:
            return True
        if not approx:
            return False
    a, b = complex(a), complex(b)
    if a == b:
        return True
    rel = 1e-4 if approx else 1e-9
    return abs(a - b) <= rel * max(abs(a), abs(b)) + (1e-12 if not approx else 1e-9)


def _rounds_to(exact, approx_str: str) -> bool:
    d = _decimals(approx_str)
    if d is None or d < 3:  # 0.333 for 1/3 is a rounded answer; 1.41 for sqrt(2) is not accepted
        return False
    try:
        target = Fraction(approx_str.strip())
    except (ValueError, ZeroDivisionError):
        return False
    v = complex(exact)
    if abs(v.imag) > 1e-12:
        return False
    half = Fraction(1, 2 * 10**d)
    return abs(Fraction(v.real) - target) <= half * Fraction(1001, 1000)


def _const_value(node):
    return evaluate(node, {})


# a numeral in a base: decimal digits and capital letters, at least one decimal digit (``52_8``, ``A3_{16}``);
# ``a_{16}``, ``x_{36}`` or ``A_{11}`` are subscripted names, and a name is never read as a number
_BASE_RE = re.compile(r"^([0-9A-Z]*[0-9][0-9A-Z]*)_\{?(\d{1,2})\}?$")


def _parse_answer(s: str):
    """parse(), plus numbers written in a base (``52_8``)."""
    m = _BASE_RE.match(s)
    if m and 2 <= int(m.group(2)) <= 36:
        try:
            return ("num", str(int(m.group(1), int(m.group(2)))))
        except ValueError:
            pass
    return parse(s)


def _expr_equal(a: str, b: str, percent: bool, sym: SymFn):
    if a == b or a.lower() == b.lower():
        return True
    if ("\begin" in a) != ("\begin" in b):
        return False
    try:
        na, nb = _parse_answer(a), _parse_answer(b)
    except ParseError:
        return sym(a, b) if sym else None
    va_vars, vb_vars = free_vars(na), free_vars(nb)
    approx = has_decimal(na) or has_decimal(nb)
    if not va_vars and not vb_vars:
        try:
            va, vb = _const_value(na), _const_value(nb)
        except Undefined:
            return (sym(a, b) if sym else None) if ("\\infty" not in a + b) else False
        if _close(va, vb, approx):
            return True
        if percent:
            for f in (Fraction(100), Fraction(1, 100)):
                scaled = va * f if isinstance(va, Fraction) else complex(va) * float(f)
                if _close(scaled, vb, approx):
                    return True
        # a rounded decimal answer against an exact value (1/3 vs 0.333)
        if not has_decimal(na) and _rounds_to(va, b):
            return True
        if not has_decimal(nb) and _rounds_to(vb, a):
            return True
        return False
    names = sorted(va_vars | vb_vars)
    if len(names) > 8:
        return sym(a, b) if sym else None
    integer_points = has_sum(na) or has_sum(nb)  # summation bounds need integers
    good = 0
    for k, pt in enumerate(_POINTS):
        if integer_points:
            env = {nm: Fraction(3 + k + 7 * j) for j, nm in enumerate(names)}
        else:
            env = {nm: complex(pt[j % 8] + 0.13 * (j // 8)) for j, nm in enumerate(names)}
        try:
            va, vb = evaluate(na, env), evaluate(nb, env)
        except (Undefined, TooBig):
            continue
        if not _close(va, vb, approx):
            return False
        good += 1
    if good >= 3:
        return True
    return sym(a, b) if sym else None


def _eq_equal(g, p, sym: SymFn):
    """Equations l1 = r1 and l2 = r2 are equal when l1 - r1 is a constant non-zero multiple of l2 - r2."""
    try:
        d1 = parse(f"{_wrap(g[1])}-{_wrap(g[2])}")
        d2 = parse(f"{_wrap(p[1])}-{_wrap(p[2])}")
    except ParseError:
        if sym:
            return sym(f"{g[1]}={g[2]}", f"{p[1]}={p[2]}")
        return None
    names = sorted(free_vars(d1) | free_vars(d2))
    ratio = None
    good = 0
    for pt in _POINTS:
        env = {nm: complex(pt[j % 8] + 0.13 * (j // 8)) for j, nm in enumerate(names)}
        try:
            v1, v2 = complex(evaluate(d1, env)), complex(evaluate(d2, env))
        except (Undefined, TooBig):
            continue
        if abs(v1) < 1e-12 and abs(v2) < 1e-12:
            good += 1
            continue
        if abs(v2) < 1e-12 or abs(v1) < 1e-12:
            return False
        r = v1 / v2
        if ratio is None:
            ratio = r
        elif abs(r - ratio) > 1e-7 * max(1.0, abs(ratio)):
            return False
        good += 1
    return good >= 3 if good else None


# ------------------------------------------------------------------ intervals

def _endpoint(s: str):
    s = s.strip()
    if s in ("\\infty", "+\\infty"):
        return _INF
    if s == "-\\infty":
        return -_INF
    v = complex(evaluate(parse(s), {}))
    if abs(v.imag) > 1e-12:
        raise Undefined("complex endpoint")
    return v.real


def _intervals(node):
    """A list of (lo, hi, lo_closed, hi_closed), or None when the node is not a set of reals."""
    kind = node[0]
    try:
        if kind == "seq" and node[1] in ("interval", "tuple") and len(node[3]) == 2 and node[2] != "{}":
            a, b = node[3]
            if a[0] != "expr" or b[0] != "expr":
                return None
            return [(_endpoint(a[1]), _endpoint(b[1]), node[2][0] == "[", node[2][1] == "]")]
        if kind == "union":
            out = []
            for part in node[1]:
                iv = _intervals(part)
                if iv is None:
                    return None
                out.extend(iv)
            return out
        if kind == "expr" and node[1] == "\\mathbb{R}":
            return [(-_INF, _INF, False, False)]
        if kind == "ineq":
            return _ineq_intervals(node[1], node[2])
    except (ParseError, Undefined, TooBig, ValueError):
        return None
    return None


def _is_const(s: str) -> bool:
    try:
        return not free_vars(parse(s))
    except ParseError:
        return False


def _ineq_intervals(parts, ops):
    ops = [o.replace("\\le", "<=").replace("\\ge", ">=") for o in ops]
    if len(parts) == 3 and all(o in ("<", "<=") for o in ops) and _is_const(parts[0]) and _is_const(parts[2]):
        return [(_endpoint(parts[0]), _endpoint(parts[2]), ops[0] == "<=", ops[1] == "<=")]
    if len(parts) == 3 and all(o in (">", ">=") for o in ops) and _is_const(parts[0]) and _is_const(parts[2]):
        return [(_endpoint(parts[2]), _endpoint(parts[0]), ops[1] == ">=", ops[0] == ">=")]
    if len(parts) != 2:
        return None
    lhs, rhs = parts
    op = ops[0]
    try:
        f = parse(f"{_wrap(lhs)}-{_wrap(rhs)}")
    except ParseError:
        return None
    names = free_vars(f)
    if len(names) != 1:
        return None
    (v,) = names
    try:
        f0 = evaluate(f, {v: Fraction(0)})
        f1 = evaluate(f, {v: Fraction(1)})
        f3 = evaluate(f, {v: Fraction(3)})
    except (Undefined, TooBig):
        return None
    if not all(isinstance(x, Fraction) for x in (f0, f1, f3)):
        return None
    a = f1 - f0
    if a == 0 or f3 != f0 + 3 * a:
        return None
    c = -f0 / a
    if op == "\\ne":
        return [(-_INF, float(c), False, False), (float(c), _INF, False, False)]
    if a < 0:
        op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}[op]
    if op in ("<", "<="):
        return [(-_INF, float(c), False, op == "<=")]
    if op in (">", ">="):
        return [(float(c), _INF, op == ">=", False)]
    return None


def _iv_equal(x, y) -> bool:
    def ep(a, b):
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= 1e-4 * max(abs(a), abs(b)) + 1e-9

    return ep(x[0], y[0]) and ep(x[1], y[1]) and (x[2] == y[2] or math.isinf(x[0])) and (x[3] == y[3] or math.isinf(x[1]))


def _ivset_equal(a, b) -> bool:
    return all(any(_iv_equal(x, y) for y in b) for x in a) and all(any(_iv_equal(x, y) for y in a) for x in b)


# ------------------------------------------------------------------ main comparison

def _items(node):
    if node[0] == "list":
        return node[1], (node[2] if len(node) > 2 else _LIST)
    if node[0] == "seq":
        return node[3], (_UNORDERED if node[1] == "set" else _ORDERED)
    return None, None


def _in_order(gord: str, pord: str) -> bool:
    """A tuple is matched in order against anything; a bare list in order against another bare list only."""
    return _ORDERED in (gord, pord) or gord == pord == _LIST


def _cmp(g, p, percent: bool, sym: SymFn, depth: int = 0):
    if depth > 20:
        return None
    if g[0] == "labelled":
        g = g[2]
    if p[0] == "labelled":
        p = p[2]
    if g[0] == "empty" or p[0] == "empty":
        return False
    if g[0] == "expr" and p[0] == "expr":
        return _expr_equal(g[1], p[1], percent, sym)
    gi, gord = _items(g)
    pi, pord = _items(p)
    # one-element collections against scalars
    if gi is not None and len(gi) == 1 and pi is None and g[0] == "list":
        return _cmp(gi[0], p, percent, sym, depth + 1)
    if pi is not None and len(pi) == 1 and gi is None and p[0] == "list":
        return _cmp(g, pi[0], percent, sym, depth + 1)
    # intervals / inequalities
    if "ineq" in (g[0], p[0]) or "union" in (g[0], p[0]) or (
        g[0] == "seq" and g[1] == "interval") or (p[0] == "seq" and p[1] == "interval"):
        ga, pa = _intervals(g), _intervals(p)
        if ga is not None and pa is not None:
            if g[0] == "seq" and p[0] == "seq":
                if g[2] != p[2]:
                    return False
            return _ivset_equal(ga, pa)
        if g[0] == "ineq" and p[0] == "ineq":
            return _ineq_struct_equal(g, p, percent, sym, depth)
        if g[0] == "union" and p[0] == "union" and len(g[1]) == len(p[1]):
            return _unordered_equal(g[1], p[1], percent, sym, depth)
        if g[0] in ("ineq", "union") or p[0] in ("ineq", "union"):
            return False
    if gi is not None and pi is not None:
        if _in_order(gord, pord):
            if len(gi) != len(pi):
                return False
            if g[0] == "seq" and p[0] == "seq" and g[1] == "interval" and p[1] == "interval" and g[2] != p[2]:
                return False
            for a, b in zip(gi, pi):
                r = _cmp(a, b, percent, sym, depth + 1)
                if not r:
                    return r
            return True
        return _unordered_equal(gi, pi, percent, sym, depth)
    if gi is not None or pi is not None:
        # decimal comma / thousands: gold 1.22 vs "1,22"
        scalar, coll = (g, p) if pi is not None else (p, g)
        items = (pi if pi is not None else gi)
        if scalar[0] == "expr" and coll[0] == "list" and len(items) == 2 and all(x[0] == "expr" for x in items):
            a, b = items[0][1], items[1][1]
            if re.fullmatch(r"-?\d+", a) and re.fullmatch(r"\d+", b):
                alt = f"{a}.{b}"
                if _expr_equal(scalar[1], alt, percent, None):
                    return True
        return False
    if g[0] == "matrix" and p[0] == "matrix":
        if len(g[1]) != len(p[1]) or any(len(r1) != len(r2) for r1, r2 in zip(g[1], p[1])):
            return False
        for r1, r2 in zip(g[1], p[1]):
            for c1, c2 in zip(r1, r2):
                r = _expr_equal(c1, c2, percent, sym)
                if not r:
                    return r
        return True
    if g[0] == "eq" and p[0] == "eq":
        return _eq_equal(g, p, sym)
    if g[0] == "matrix" or p[0] == "matrix":
        other = p if g[0] == "matrix" else g
        if sym and other[0] == "expr" and "\\begin" in other[1]:  # matrix arithmetic: A + B, A B
            return sym(_to_latex(g), _to_latex(p))
        return False
    return False


def _to_latex(node) -> str:
    if node[0] == "expr":
        return node[1]
    if node[0] == "matrix":
        return "\\begin{pmatrix}" + "\\\\".join("&".join(r) for r in node[1]) + "\\end{pmatrix}"
    return ""


def _ineq_struct_equal(g, p, percent, sym, depth):
    def canon(node):
        parts, ops = list(node[1]), [o.replace("\\le", "<=").replace("\\ge", ">=") for o in node[2]]
        if ops and ops[0] in (">", ">="):
            parts = parts[::-1]
            ops = [{">": "<", ">=": "<="}.get(o, o) for o in ops[::-1]]
        return parts, ops

    gp, go = canon(g)
    pp, po = canon(p)
    if go != po or len(gp) != len(pp):
        return False
    for a, b in zip(gp, pp):
        r = _expr_equal(a, b, percent, sym)
        if not r:
            return r
    return True


def _unordered_equal(gi, pi, percent, sym, depth):
    def covered(xs, ys):
        for x in xs:
            hit = False
            for y in ys:
                if _cmp(x, y, percent, sym, depth + 1):
                    hit = True
                    break
            if not hit:
                return False
        return True

    return covered(gi, pi) and covered(pi, gi)


def _unordered_lists(node):
    """The node with every bare list matched as a set (Math-Verify's reading of "1, 2"); tuples keep their order."""
    if node[0] == "list":
        mode = node[2] if len(node) > 2 else _LIST
        return ("list", [_unordered_lists(x) for x in node[1]], _UNORDERED if mode == _LIST else mode)
    if node[0] == "seq":
        return node[:3] + ([_unordered_lists(x) for x in node[3]],)
    if node[0] == "union":
        return ("union", [_unordered_lists(x) for x in node[1]])
    if node[0] == "labelled":
        return node[:2] + (_unordered_lists(node[2]),)
    return node


def equivalent(gold_norm: str, pred_norm: str, percent: bool = False, sym: SymFn = None, *,
               ordered_lists: bool = True):
    """True/False, or None when undecidable.  Raises TooBig for values beyond the evaluation guards.

    ``ordered_lists``: a bare list "1, 2" is matched in order, as the Qwen2.5-Math harness does (the paper's
    numbers); False matches it as a set, as Math-Verify does."""
    if gold_norm == pred_norm or gold_norm.lower() == pred_norm.lower():
        return bool(gold_norm)
    g, p = structure(gold_norm), structure(pred_norm)
    if not ordered_lists:
        g, p = _unordered_lists(g), _unordered_lists(p)
    r = _cmp(g, p, percent, sym)
    if not r and g[0] == "labelled" and p[0] == "eq":
        r = _eq_equal(("eq", g[1], g[2][1]), p, sym) or r
    if not r and p[0] == "labelled" and g[0] == "eq":
        r = _eq_equal(g, ("eq", p[1], p[2][1]), sym) or r
    return r
