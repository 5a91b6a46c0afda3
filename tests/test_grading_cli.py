"""The `mindthegap grade` console command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindthegap.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"


def _write(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_grade_roundtrip(tmp_path, capsys):
    inp = _write(tmp_path / "in.jsonl", [
        {"id": 1, "gold": "\\frac{1}{2}", "pred": "So the answer is $\\boxed{0.5}$."},
        {"id": 2, "gold": "3", "pred": "4"},
        {"id": 3, "gold": "3", "pred": ""},
        {"id": 4, "gold": 27.0, "pred": "27"},
    ])
    out = tmp_path / "out" / "graded.jsonl"
    assert main(["grade", str(inp), "-o", str(out), "--workers", "2", "--timeout", "2"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert [r["correct"] for r in rows] == [True, False, False, True]
    assert [r["status"] for r in rows] == ["correct", "wrong", "no_answer", "correct"]
    assert rows[0]["extracted"] == "0.5" and rows[2]["extracted"] is None
    assert "correct=2" in capsys.readouterr().err


def test_grade_list_order_follows_the_harness_unless_asked(tmp_path, capsys):
    inp = _write(tmp_path / "in.jsonl", [{"gold": "1, -2", "pred": "\\boxed{-2, 1}"}])
    assert main(["grade", str(inp)]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is False
    assert main(["grade", str(inp), "--unordered-lists"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True


def test_grade_to_stdout(tmp_path, capsys):
    inp = _write(tmp_path / "in.jsonl", [{"gold": "1", "pred": "1"}])
    assert main(["grade", str(inp)]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True


@pytest.mark.parametrize("bad, message", [
    ("{not json", "line 2: invalid JSON"),
    ('{"gold": "1"}', "line 2: missing field(s) 'pred'"),
    ('["gold", "pred"]', "line 2: expected a JSON object"),
])
def test_bad_lines_name_file_and_line(tmp_path, capsys, bad, message):
    inp = _write(tmp_path / "bad.jsonl", [{"gold": "1", "pred": "1"}, bad])
    assert main(["grade", str(inp)]) == 2
    err = capsys.readouterr().err
    assert str(inp) in err and message in err


def test_invalid_utf8_line_does_not_stop_the_batch(tmp_path):
    inp = tmp_path / "bin.jsonl"
    inp.write_bytes(b'{"gold": "1", "pred": "\xff\xfe 1"}\n{"gold": "2", "pred": "2"}\n')
    out = tmp_path / "o.jsonl"
    assert main(["grade", str(inp), "-o", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["status"] == "unparsable" and rows[0]["correct"] is False
    assert rows[1]["correct"] is True


def test_module_entry_point(tmp_path):
    inp = _write(tmp_path / "in.jsonl", [{"gold": "2", "pred": "\\boxed{2}"}])
    r = subprocess.run([sys.executable, "-m", "mindthegap.cli", "grade", str(inp)], capture_output=True,
                       text=True, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "correct"
