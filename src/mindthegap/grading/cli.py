"""``mindthegap grade IN.jsonl [-o OUT.jsonl] [--workers N] [--timeout S]``.

Each input line is a JSON object with ``gold`` and ``pred`` (a bare answer or a whole response).  Each output
line, in input order, is the input object plus ``correct`` (bool), ``status`` (one of STATUSES) and
``extracted`` (the answer extracted from ``pred``, or null).  A summary of statuses goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from mindthegap.io import write_text


class InputError(ValueError):
    pass


def read_pairs(path: str) -> list[dict]:
    records = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
                bad_bytes = False
            except UnicodeDecodeError:
                # judged as "unparsable" rather than stopping the whole batch
                line = raw.decode("utf-8", errors="replace")
                bad_bytes = True
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {lineno}: invalid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict):
                raise InputError(f"{path}, line {lineno}: expected a JSON object with 'gold' and 'pred'")
            missing = [k for k in ("gold", "pred") if k not in rec]
            if missing:
                raise InputError(f"{path}, line {lineno}: missing field(s) {', '.join(repr(m) for m in missing)}")
            for k in ("gold", "pred"):
                v = rec[k]
                if v is None:
                    rec[k] = ""
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    rec[k] = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                elif not isinstance(v, str):
                    raise InputError(f"{path}, line {lineno}: field {k!r} must be a string or a number")
            if bad_bytes:
                rec["_invalid_utf8"] = True
            records.append(rec)
    return records


def run(args: argparse.Namespace) -> int:
    from mindthegap.grading import judge_batch

    try:
        records = read_pairs(args.input)
    except OSError as exc:
        print(f"mindthegap grade: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"mindthegap grade: {exc}", file=sys.stderr)
        return 2
    from mindthegap.grading import Verdict

    todo = [i for i, r in enumerate(records) if not r.get("_invalid_utf8")]
    judged = judge_batch([(records[i]["gold"], records[i]["pred"]) for i in todo], workers=args.workers,
                         timeout=args.timeout, progress=args.progress, ordered_lists=not args.unordered_lists)
    verdicts = [Verdict(False, "unparsable", None)] * len(records)
    for i, v in zip(todo, judged):
        verdicts[i] = v
    lines = []
    for rec, v in zip(records, verdicts):
        out = {k: v for k, v in rec.items() if k != "_invalid_utf8"}
        out.update(correct=v.correct, status=v.status, extracted=v.extracted)
        lines.append(json.dumps(out, ensure_ascii=False))
    text = "\n".join(lines) + ("\n" if lines else "")
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_text(text, args.output)  # atomic, and readable as the umask says (mkstemp made it 0600)
    counts = Counter(v.status for v in verdicts)
    summary = " ".join(f"{k}={counts.get(k, 0)}" for k in ("correct", "wrong", "no_answer", "unparsable", "timeout"))
    print(f"graded {len(verdicts)} pairs: {summary}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("grade", help="judge predictions against gold answers (JSONL in, JSONL out)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="JSONL file; each line has 'gold' and 'pred'")
    p.add_argument("-o", "--output", default=None, help="output JSONL (default: stdout)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--timeout", type=float, default=3.0, help="time limit per judgement in seconds (default 3)")
    p.add_argument("--progress", action="store_true", help="report progress on stderr")
    p.add_argument("--unordered-lists", action="store_true",
                   help="match a bare list '1, 2' as a set, as Math-Verify (default: in order, as the Qwen2.5-Math "
                        "harness that produced the paper's numbers)")
    p.set_defaults(run=run)
    return p
