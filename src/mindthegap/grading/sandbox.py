"""A killable sympy/latex2sympy2 worker: the only place where sympy sees (already normalised) answer text.

The worker is a child process started with ``subprocess`` (so it works from any thread and from inside
daemonic pool workers), speaks JSON lines over pipes, runs under an address-space limit, and is killed
and replaced when a request overruns its deadline.  latex2sympy2 builds sympy objects from an ANTLR parse
tree: no ``eval``, ``sympify`` or ``parse_expr`` is applied to the text.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["SandboxTimeout", "sym_equal", "shutdown"]

_MEM_LIMIT = 3 * 1024**3
_MAX_TEX = 400


class SandboxTimeout(TimeoutError):
    pass


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from mindthegap.grading.sandbox import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
        )
        self.buf = b""
        self.ready = False

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            r, _, _ = select.select([fd], [], [], remaining)
            if not r:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("sandbox worker exited")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self, seconds: float = 60.0) -> None:
        if not self.ready:
            line = self._readline(time.monotonic() + seconds)
            if line is None:
                raise RuntimeError("sandbox worker did not start")
            self.ready = True

    def request(self, a: str, b: str, timeout: float):
        self.wait_ready()
        self.proc.stdin.write((json.dumps({"a": a, "b": b}) + "\n").encode())
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + max(timeout, 0.0))
        if line is None:
            self.kill()
            raise SandboxTimeout()
        return json.loads(line)["r"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass


_pool: list[_Worker] = []
_lock = threading.Lock()
_owner_pid = os.getpid()


def _acquire() -> _Worker:
    global _owner_pid
    with _lock:
        if os.getpid() != _owner_pid:  # forked: the parent's workers are not ours
            _pool.clear()
            _owner_pid = os.getpid()
        while _pool:
            w = _pool.pop()
            if w.alive():
                return w
    return _Worker()


def _release(w: _Worker) -> None:
    if w.alive():
        with _lock:
            _pool.append(w)


def sym_equal(a: str, b: str, timeout: float) -> bool | None:
    """Symbolic equality of two LaTeX answers in the sandbox; None if unparsable; SandboxTimeout on overrun."""
    if len(a) > _MAX_TEX or len(b) > _MAX_TEX:
        return None
    if timeout <= 0:
        raise SandboxTimeout()
    w = _acquire()
    try:
        w.wait_ready()
        r = w.request(a, b, timeout)
    except SandboxTimeout:
        raise
    except Exception:
        w.kill()
        return None
    _release(w)
    return r


def warm() -> None:
    """Start one worker ahead of time (its start-up is not charged to a judgement)."""
    w = _acquire()
    try:
        w.wait_ready()
    finally:
        _release(w)


def shutdown() -> None:
    with _lock:
        for w in _pool:
            w.kill()
        _pool.clear()


import atexit  # noqa: E402

atexit.register(shutdown)


# ------------------------------------------------------------------ worker side

def _sym_compare(a: str, b: str):
    import sympy
    from latex2sympy2 import latex2sympy

    def conv(t):
        e = latex2sympy(t)
        if isinstance(e, (list, tuple)):
            raise ValueError("list")
        if hasattr(e, "doit") and not isinstance(e, sympy.Equality):
            e = e.doit()
        return e

    ea, eb = conv(a), conv(b)
    if isinstance(ea, sympy.Equality) and isinstance(eb, sympy.Equality):
        ea, eb = ea.lhs - ea.rhs, eb.lhs - eb.rhs
        if ea == eb or sympy.simplify(ea - eb) == 0 or sympy.simplify(ea + eb) == 0:
            return True
        q = sympy.simplify(ea / eb)
        return bool(q.is_number and q != 0)
    if isinstance(ea, sympy.Equality) != isinstance(eb, sympy.Equality):
        if isinstance(ea, sympy.Equality):
            ea = ea.rhs
        else:
            eb = eb.rhs
    if ea == eb:
        return True
    is_mat = isinstance(ea, sympy.MatrixBase) or isinstance(eb, sympy.MatrixBase)
    if is_mat:
        if not (isinstance(ea, sympy.MatrixBase) and isinstance(eb, sympy.MatrixBase)) or ea.shape != eb.shape:
            return False
        d = sympy.simplify(ea - eb)
        return all(x == 0 for x in d)
    d = ea - eb
    if d == 0:
        return True
    # cheap refutation first: evaluate at a rational point (bound variables are not free)
    free = sorted(d.free_symbols, key=str)
    if len(free) <= 8:
        try:
            point = {v: sympy.Integer(3 + 2 * j) for j, v in enumerate(free)}
            val = complex(sympy.N(d.subs(point).doit(), 20))
            scale = 1.0 + abs(complex(sympy.N(ea.subs(point).doit(), 20)))
            if abs(val) > 1e-6 * scale:
                return False
        except Exception:
            pass
    s = sympy.simplify(d)
    if s == 0:
        return True
    if s.is_number:
        v = complex(sympy.N(s, 30))
        return abs(v) < 1e-9
    return False


def _serve() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEM_LIMIT, _MEM_LIMIT))
    except Exception:
        pass
    import sympy  # noqa: F401
    import latex2sympy2

    # ANTLR builds its prediction automaton lazily, per grammar decision, on first use (~0.1-0.3 s each for
    # sums, matrices, subscripts ...): exercise the common constructs once before reporting ready
    for warm_tex in (
        r"\frac{x^{2}}{2}+\sqrt{y}\sum_{k=0}^{n}k",
        r"\begin{pmatrix}1&2\\3&4\end{pmatrix}+\begin{pmatrix}5&6\\7&8\end{pmatrix}",
    ):
        try:
            latex2sympy2.latex2sympy(warm_tex)
        except Exception:
            pass

    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            r = _sym_compare(req["a"], req["b"])
        except BaseException:  # noqa: BLE001 - any failure means "could not decide"
            r = None
        out.write((json.dumps({"r": r}) + "\n").encode())
        out.flush()
