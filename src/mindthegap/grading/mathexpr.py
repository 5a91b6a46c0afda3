"""A small, safe LaTeX/plain-math expression parser and evaluator (no Python ``eval`` anywhere).

The parser covers what final answers are made of: numbers, ``+ - * / ^``, implicit products, ``\\frac``,
``\\sqrt[n]{}``, ``\\binom``, ``!``, ``|x|``, functions (``\\sin``, ``\\log_b``, ...), ``\\pi``, ``e``, ``i``
and variables with subscripts.  Values are exact (``Fraction``) while that is cheap and bounded, otherwise
complex floats.  Expressions with variables are compared by evaluation at fixed pseudo-random positive
points.  Every operation is size-guarded, so evaluation time is bounded; what the guards refuse raises
:class:`TooBig`.  Anything else outside the grammar raises :class:`ParseError` (the caller then falls back to
sympy/latex2sympy2 in a killable sandbox).
"""

from __future__ import annotations

import cmath
import math
import re
from fractions import Fraction

__all__ = ["ParseError", "TooBig", "parse", "evaluate", "free_vars", "Undefined"]

Node = tuple


class ParseError(ValueError):
    pass


class TooBig(ArithmeticError):
    pass


class Undefined(ArithmeticError):
    pass


MAX_LEN = 1500
MAX_DEPTH = 60
MAX_BITS = 20_000
MAX_EXP = 100_000

_FUNCS = {
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "arcsec", "arccsc", "arccot", "asin", "acos", "atan",
}
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
    "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega",
}
_IGNORED_CMDS = {"left", "right", "displaystyle", "limits", "nolimits", "big", "Big", "bigl", "bigr", "Bigl", "Bigr"}
_WRAP_CMDS = {"text", "mathrm", "mathit", "mathbf", "textbf", "operatorname", "mathsf", "textrm", "textit", "mbox", "boxed"}
_MUL_CMDS = {"cdot", "times", "ast"}
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+(?![a-zA-Z]))?|\.\d+(?:[eE][-+]?\d+(?![a-zA-Z]))?)"
    r"|\\(?P<cmd>[a-zA-Z]+)|(?P<sym>\\[,;:! ]|[-+*/^_!(){}\[\]|'·×÷−=])|(?P<id>[a-zA-Z])|(?P<uni>[πθα-ω]))"
)


def _tokenize(s: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    pos = 0
    n = len(s)
    while pos < n:
        m = _TOKEN_RE.match(s, pos)
        if not m or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise ParseError(f"unexpected character {s[pos]!r}")
        pos = m.end()
        if m.group("num") is not None:
            toks.append(("num", m.group("num")))
        elif m.group("cmd") is not None:
            c = m.group("cmd")
            if c in _IGNORED_CMDS:
                continue
            toks.append(("cmd", c))
        elif m.group("sym") is not None:
            c = m.group("sym")
            if c.startswith("\\"):
                continue
            c = {"·": "*", "×": "*", "÷": "/", "−": "-"}.get(c, c)
            toks.append(("sym", c))
        elif m.group("id") is not None:
            toks.append(("id", m.group("id")))
        else:
            u = m.group("uni")
            toks.append(("cmd", "pi") if u == "π" else ("id", u))
    return toks


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]):
        self.t = toks
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("eof", "")

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, kind: str, val: str):
        tok = self.next()
        if tok != (kind, val):
            raise ParseError(f"expected {val!r}, got {tok[1]!r}")

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("expression nested too deeply")

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "eof":
            raise ParseError(f"unexpected token {self.peek()[1]!r}")
        return node

    def expr(self) -> Node:
        self.enter()
        terms = [self.term()]
        while True:
            tok = self.peek()
            if tok == ("sym", "+"):
                self.next()
                terms.append(self.term())
            elif tok == ("sym", "-"):
                self.next()
                terms.append(("neg", self.term()))
            else:
                break
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ("add", terms)

    def _starts_atom(self, tok) -> bool:
        kind, val = tok
        if kind in ("num", "id"):
            return True
        if kind == "cmd":
            return val not in _MUL_CMDS and val not in ("div", "pm", "mp")
        return kind == "sym" and val in ("(", "{", "[", "|") and not (val == "|" and self._closing_bar())

    def _closing_bar(self) -> bool:
        return getattr(self, "_in_abs", 0) > 0

    def term(self) -> Node:
        factors = [self.unary()]
        while True:
            tok = self.peek()
            if tok in (("sym", "*"),) or (tok[0] == "cmd" and tok[1] in _MUL_CMDS):
                self.next()
                factors.append(self.unary())
            elif tok == ("sym", "/") or tok == ("cmd", "div"):
                self.next()
                den = self.unary()
                factors = [("div", factors[0] if len(factors) == 1 else ("mul", factors), den)]
            elif self._starts_atom(tok):
                factors.append(self.power())
            else:
                break
        return factors[0] if len(factors) == 1 else ("mul", factors)

    def unary(self) -> Node:
        tok = self.peek()
        if tok == ("sym", "-"):
            self.next()
            self.enter()
            node = ("neg", self.unary())
            self.depth -= 1
            return node
        if tok == ("sym", "+"):
            self.next()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.peek() == ("sym", "^"):
            self.next()
            self.enter()
            exp = self.exponent()
            self.depth -= 1
            base = ("pow", base, exp)
            while self.peek() == ("sym", "!"):
                self.next()
                base = ("fact", base)
        return base

    def exponent(self) -> Node:
        tok = self.peek()
        if tok == ("sym", "{"):
            return self.group()
        if tok == ("sym", "-"):
            self.next()
            return ("neg", self.exponent())
        if tok[0] == "num":
            self.next()
            return ("num", tok[1])
        return self.power()

    def postfix(self) -> Node:
        node = self.atom()
        while True:
            tok = self.peek()
            if tok == ("sym", "!"):
                self.next()
                node = ("fact", node)
            elif tok == ("sym", "'"):
                raise ParseError("prime")
            else:
                return node

    def group(self) -> Node:
        """A ``{...}`` group or a single atom (``\\frac12`` style arguments)."""
        tok = self.peek()
        if tok == ("sym", "{"):
            self.next()
            node = self.expr()
            self.expect("sym", "}")
            return node
        if tok[0] == "num":
            self.next()
            return ("num", tok[1][0]) if "." not in tok[1] and len(tok[1]) > 1 and False else ("num", tok[1])
        return self.atom()

    def raw_group(self) -> str:
        self.expect("sym", "{")
        parts = []
        depth = 1
        while True:
            tok = self.next()
            if tok[0] == "eof":
                raise ParseError("unbalanced group")
            if tok == ("sym", "{"):
                depth += 1
            elif tok == ("sym", "}"):
                depth -= 1
                if depth == 0:
                    break
            parts.append(("\\" + tok[1]) if tok[0] == "cmd" else tok[1])
        return "".join(parts)

    def subscript(self) -> str:
        self.expect("sym", "_")
        tok = self.peek()
        if tok == ("sym", "{"):
            return self.raw_group()
        self.next()
        return tok[1]

    def atom(self) -> Node:
        self.enter()
        try:
            return self._atom()
        finally:
            self.depth -= 1

    def _atom(self) -> Node:
        kind, val = self.next()
        if kind == "num":
            return ("num", val)
        if kind == "id":
            name = val
            if self.peek() == ("sym", "_"):
                name = f"{val}_{self.subscript()}"
            if name in getattr(self, "bound", ()):
                return ("var", name)
            if name == "e":
                return ("const", "e")
            if name == "i":
                return ("const", "i")
            return ("var", name)
        if kind == "sym":
            if val in ("(", "["):
                close = ")" if val == "(" else "]"
                node = self.expr()
                tok = self.next()
                if tok != ("sym", close) and tok not in (("sym", ")"), ("sym", "]")):
                    raise ParseError("unbalanced parenthesis")
                return node
            if val == "{":
                node = self.expr()
                self.expect("sym", "}")
                return node
            if val == "|":
                self._in_abs = getattr(self, "_in_abs", 0) + 1
                node = self.expr()
                self._in_abs -= 1
                self.expect("sym", "|")
                return ("abs", node)
            raise ParseError(f"unexpected {val!r}")
        if kind == "cmd":
            return self._command(val)
        raise ParseError("unexpected end")

    def _command(self, c: str) -> Node:
        if c in ("frac", "dfrac", "tfrac", "cfrac"):
            a = self.group()
            b = self.group()
            return ("div", a, b)
        if c in ("binom", "dbinom", "tbinom"):
            a = self.group()
            b = self.group()
            return ("binom", a, b)
        if c == "sqrt":
            idx = None
            if self.peek() == ("sym", "["):
                self.next()
                idx = self.expr()
                self.expect("sym", "]")
            arg = self.group()
            return ("root", arg, idx if idx is not None else ("num", "2"))
        if c == "pi":
            return ("const", "pi")
        if c == "infty":
            return ("const", "inf")
        if c in _GREEK:
            name = c
            if self.peek() == ("sym", "_"):
                name = f"{c}_{self.subscript()}"
            return ("var", name)
        if c in _WRAP_CMDS:
            inner = self.raw_group()
            if inner in _FUNCS:
                return self._func(inner)
            if inner == "e":
                return ("const", "e")
            if re.fullmatch(r"[a-zA-Z]", inner):
                return ("var", inner)
            return parse(inner)
        if c in ("sum", "prod"):
            return self._sum(c)
        if c in _FUNCS:
            return self._func(c)
        if c == "exp":
            return self._func("exp")
        raise ParseError(f"unsupported command \\{c}")

    def _sum(self, kind: str) -> Node:
        """``\\sum_{k=a}^{b} body`` (the body is the following product, as usually meant)."""
        self.expect("sym", "_")
        self.expect("sym", "{")
        tok = self.next()
        if tok[0] not in ("id", "cmd"):
            raise ParseError("sum index")
        var = tok[1]
        self.expect("sym", "=")
        lo = self.expr()
        self.expect("sym", "}")
        self.expect("sym", "^")
        hi = self.exponent()
        self.bound = getattr(self, "bound", set()) | {var}
        body = self.term()
        return ("sum", var, lo, hi, body, kind == "prod")

    def _func(self, name: str) -> Node:
        base = None
        power = None
        if name == "log" and self.peek() == ("sym", "_"):
            self.next()
            base = self.group()
        if self.peek() == ("sym", "^"):
            self.next()
            power = self.exponent()
        tok = self.peek()
        if tok == ("sym", "("):
            self.next()
            arg = self.expr()
            self.expect("sym", ")")
        else:
            arg = self.power()
        node: Node = ("func", name, arg) if base is None else ("log", arg, base)
        if power is not None:
            if power == ("neg", ("num", "1")):
                node = ("func", "inv_" + name, arg)
            else:
                node = ("pow", node, power)
        return node


_MIXED_RE = re.compile(r"^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")


def parse(s: str) -> Node:
    """Parse a normalised answer expression into a small AST (tuples)."""
    if len(s) > MAX_LEN:
        raise ParseError("expression too long")
    m = _MIXED_RE.match(s)
    if m and int(m.group(3)) < int(m.group(4)):  # mixed number 1\frac{1}{2} = 3/2
        whole = ("add", [("num", m.group(2)), ("div", ("num", m.group(3)), ("num", m.group(4)))])
        return ("neg", whole) if m.group(1) else whole
    s = s.replace("**", "^")
    toks = _tokenize(s)
    if not toks:
        raise ParseError("empty expression")
    return _Parser(toks).parse()


def _children(n: Node) -> list[Node]:
    """The sub-expressions of one node (a sum's bound variable is a name, not a child)."""
    tag = n[0]
    if tag in ("add", "mul"):
        return list(n[1])
    if tag in ("neg", "fact", "abs"):
        return [n[1]]
    if tag in ("div", "pow", "binom", "root", "log"):
        return [n[1], n[2]]
    if tag == "func":
        return [n[2]]
    if tag == "sum":
        return [n[2], n[3], n[4]]
    return []


def free_vars(node: Node, acc: set | None = None) -> set:
    if acc is None:
        acc = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] == "var":
            acc.add(n[1])
        elif n[0] == "sum":  # the summation index is bound inside the body
            acc |= (free_vars(n[4]) - {n[1]}) | free_vars(n[2]) | free_vars(n[3])
        else:
            stack.extend(_children(n))
    return acc


def has_decimal(node: Node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] == "num" and ("." in n[1] or "e" in n[1].lower()):
            return True
        stack.extend(_children(n))
    return False


def has_sum(node: Node) -> bool:
    return "'sum'" in repr(node)


# ---------------------------------------------------------------- evaluation

Value = "Fraction | complex"


def _to_c(v) -> complex:
    if isinstance(v, Fraction):
        try:
            return complex(v.numerator / v.denominator)
        except OverflowError as exc:
            raise TooBig("number too large") from exc
    return v


def _check(v):
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
            raise TooBig("exact value too large")
        return v
    if not (math.isfinite(v.real) and math.isfinite(v.imag)):
        raise TooBig("overflow")
    return v


def _num(s: str) -> Fraction:
    if len(s) > 400:
        raise TooBig("literal too long")
    if "e" in s or "E" in s:
        mant, _, ex = s.lower().partition("e")
        e = int(ex)
        if abs(e) > 400:
            raise TooBig("exponent too large")
        return Fraction(mant) * Fraction(10) ** e
    return Fraction(s)


def _int_root(x: int, n: int) -> int | None:
    if x < 0:
        return None
    r = round(x ** (1.0 / n)) if x.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**n == x:
            return c
    return None


def _pow(b, e):
    if isinstance(b, Fraction) and isinstance(e, Fraction):
        if e.denominator == 1:
            k = e.numerator
            if b == 0 and k < 0:
                raise Undefined("0 to a negative power")
            if b in (0, 1):
                return b
            if b == -1:
                return Fraction(1 if k % 2 == 0 else -1)
            bits = max(b.numerator.bit_length(), b.denominator.bit_length())
            if abs(k) <= MAX_EXP and bits * abs(k) <= MAX_BITS:
                return b**k
            raise TooBig("power too large")
        # rational exponent: exact root when possible, real odd roots of negatives
        q = e.denominator
        if q <= 64 and abs(e.numerator) <= 10_000:
            sign = 1
            num, den = b.numerator, b.denominator
            if num < 0:
                if q % 2 == 1:
                    sign, num = -1, -num
                else:
                    num = None
            if num is not None:
                rn, rd = _int_root(num, q), _int_root(den, q)
                if rn is not None and rd is not None:
                    return _pow(Fraction(sign * rn, rd), Fraction(e.numerator))
                if sign == -1:
                    mag = _to_c(_pow(Fraction(num, den), Fraction(e.numerator)))
                    r = mag ** (1.0 / q) if mag.imag == 0 and mag.real >= 0 else mag ** (1.0 / q)
                    return _check(complex(r) * (-1 if e.numerator % 2 else 1))
    bc, ec = _to_c(b), _to_c(e)
    if abs(ec) > 1e6 and abs(bc) not in (0.0, 1.0):
        raise TooBig("exponent too large")
    try:
        if bc == 0:
            if ec.real > 0:
                return complex(0)
            raise Undefined("0 to a non-positive power")
        if bc.imag == 0 and bc.real > 0 and ec.imag == 0:
            return _check(complex(bc.real**ec.real))
        return _check(bc**ec)
    except OverflowError as exc:
        raise TooBig("overflow") from exc
    except ZeroDivisionError as exc:
        raise Undefined(str(exc)) from exc


_CFUNCS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "sinh": cmath.sinh, "cosh": cmath.cosh,
    "tanh": cmath.tanh, "arcsin": cmath.asin, "asin": cmath.asin, "arccos": cmath.acos, "acos": cmath.acos,
    "arctan": cmath.atan, "atan": cmath.atan, "exp": cmath.exp, "ln": cmath.log, "log": cmath.log,
    "lg": cmath.log10,
    "sec": lambda z: 1 / cmath.cos(z), "csc": lambda z: 1 / cmath.sin(z), "cot": lambda z: 1 / cmath.tan(z),
    "arcsec": lambda z: cmath.acos(1 / z), "arccsc": lambda z: cmath.asin(1 / z), "arccot": lambda z: cmath.atan(1 / z),
}


def evaluate(node: Node, env: dict | None = None):
    """Value of a node: ``Fraction`` when exact, else ``complex``.  Raises Undefined/TooBig/ParseError."""
    env = env or {}
    tag = node[0]
    if tag == "num":
        return _num(node[1])
    if tag == "var":
        if node[1] not in env:
            raise Undefined(f"free variable {node[1]}")
        return env[node[1]]
    if tag == "const":
        c = node[1]
        if c == "pi":
            return complex(math.pi)
        if c == "e":
            return complex(math.e)
        if c == "i":
            return complex(0, 1)
        raise Undefined("infinity")
    if tag == "neg":
        return -evaluate(node[1], env)
    if tag == "add":
        vals = [evaluate(t, env) for t in node[1]]
        if all(isinstance(v, Fraction) for v in vals):
            return _check(sum(vals, Fraction(0)))
        return _check(sum((_to_c(v) for v in vals), complex(0)))
    if tag == "mul":
        acc = Fraction(1)
        for t in node[1]:
            v = evaluate(t, env)
            if isinstance(acc, Fraction) and isinstance(v, Fraction):
                acc = _check(acc * v)
            else:
                acc = _check(_to_c(acc) * _to_c(v))
        return acc
    if tag == "div":
        a, b = evaluate(node[1], env), evaluate(node[2], env)
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            if b == 0:
                raise Undefined("division by zero")
            return _check(a / b)
        bc = _to_c(b)
        if bc == 0:
            raise Undefined("division by zero")
        return _check(_to_c(a) / bc)
    if tag == "pow":
        return _pow(evaluate(node[1], env), evaluate(node[2], env))
    if tag == "root":
        n = evaluate(node[2], env)
        if n == 0:
            raise Undefined("zeroth root")
        inv = (1 / n) if isinstance(n, Fraction) else 1 / _to_c(n)
        return _pow(evaluate(node[1], env), inv)
    if tag == "fact":
        v = evaluate(node[1], env)
        if isinstance(v, Fraction) and v.denominator == 1 and 0 <= v.numerator <= 2000:
            return _check(Fraction(math.factorial(v.numerator)))
        vc = _to_c(v)
        if vc.imag == 0 and -1 < vc.real < 170:
            return complex(math.gamma(vc.real + 1))
        raise Undefined("factorial")
    if tag == "binom":
        a, b = evaluate(node[1], env), evaluate(node[2], env)
        if all(isinstance(v, Fraction) and v.denominator == 1 for v in (a, b)) and 0 <= a.numerator <= 5000:
            return Fraction(math.comb(a.numerator, b.numerator)) if b.numerator >= 0 else Fraction(0)
        raise Undefined("binomial")
    if tag == "abs":
        v = evaluate(node[1], env)
        return abs(v) if isinstance(v, Fraction) else complex(abs(v))
    if tag == "func":
        name = node[1]
        v = _to_c(evaluate(node[2], env))
        inv = name.startswith("inv_")
        if inv:
            name = name[4:]
        try:
            if name in ("exp",) and v.real > 700:
                raise TooBig("exp overflow")
            r = _CFUNCS[name](v)
            if inv:
                r = 1 / r
        except (ValueError, ZeroDivisionError) as exc:
            raise Undefined(str(exc)) from exc
        except OverflowError as exc:
            raise TooBig("overflow") from exc
        return _check(complex(r))
    if tag == "log":
        v, b = _to_c(evaluate(node[1], env)), _to_c(evaluate(node[2], env))
        try:
            return _check(cmath.log(v) / cmath.log(b))
        except (ValueError, ZeroDivisionError) as exc:
            raise Undefined(str(exc)) from exc
    if tag == "sum":
        _, var, lo_n, hi_n, body, is_prod = node
        lo, hi = _as_int(evaluate(lo_n, env)), _as_int(evaluate(hi_n, env))
        if hi - lo > 5000:
            raise TooBig("sum too long")
        acc = Fraction(1) if is_prod else Fraction(0)
        for k in range(lo, hi + 1):
            v = evaluate(body, {**env, var: Fraction(k)})
            if isinstance(acc, Fraction) and isinstance(v, Fraction):
                acc = _check(acc * v if is_prod else acc + v)
            else:
                acc = _check(_to_c(acc) * _to_c(v) if is_prod else _to_c(acc) + _to_c(v))
        return acc
    raise ParseError(f"unknown node {tag}")


def _as_int(v) -> int:
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return v.numerator
        raise Undefined("non-integer bound")
    if abs(v.imag) < 1e-9 and abs(v.real - round(v.real)) < 1e-9 and abs(v.real) < 1e9:
        return int(round(v.real))
    raise Undefined("non-integer bound")
