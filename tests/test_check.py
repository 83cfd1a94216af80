"""`python -m autograder check NOTEBOOK` on notebook 05, as a student runs it.

Expected points come from the source notebook's nbgrader metadata (summed here per exercise),
the wrong answer from autograder/wrong_answers; each run is one kernel (about 5 s).
"""

import copy
import json
import re

import nbformat
import pytest
from conftest import REPO, run_cli

from autograder.nbtools import student_version

NAME = "05_worked_example"
SOURCE = REPO / "notebooks" / NAME / f"{NAME}.ipynb"
TRACEBACK = re.compile(r"Traceback|File \"|/opt/bpkit|site-packages|-{5,}")


def _md(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def source():
    return nbformat.read(SOURCE, as_version=4)


@pytest.fixture(scope="module")
def student(source):
    return student_version(source)


def _points(nb):
    """{exercise or written grade_id: points}, computed from the metadata without autograder."""
    out = {}
    for c in nb.cells:
        md = _md(c)
        if not md.get("grade"):
            continue
        gid = md["grade_id"]
        key = re.sub(r"_test\d*$", "", gid) if c.cell_type == "code" else gid
        out[key] = out.get(key, 0) + md.get("points", 0)
    return out


def _written(nb):
    return [_md(c)["grade_id"] for c in nb.cells if c.cell_type != "code" and _md(c).get("grade")]


def _lines(stdout):
    """{name: rest of the line} for the per-exercise lines."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+(\d+(?:\.\d+)?) pts?\s+(.*)$", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), m.group(3))
    return out


def _with(nb, **answers):
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        if _md(c).get("grade_id") in answers:
            c.source = answers[_md(c)["grade_id"]]
    return nb


def _check(nb, tmp_path, name="mine.ipynb"):
    path = tmp_path / name
    nbformat.write(nb, path)
    before = path.read_bytes()
    proc = run_cli("check", path)
    assert path.read_bytes() == before, "check modified the student's file"
    return proc


def test_untouched_notebook_says_nothing_attempted(student, source, tmp_path):
    proc = _check(student, tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "nothing attempted yet" in out
    lines = _lines(out)
    points = _points(source)
    assert set(lines) == set(points), out
    for name, pts in points.items():
        assert lines[name][0] == pts, f"{name}: points {lines[name][0]} != {pts}\n{out}"
        want = "written answer: empty" if name in _written(source) else "not attempted"
        assert lines[name][1] == want, out
    assert not TRACEBACK.search(out + proc.stderr), out


def test_solved_notebook_with_one_slip(source, tmp_path):
    wrong = json.loads((REPO / "autograder" / "wrong_answers" / f"{NAME}.json").read_text())
    slip = wrong["forward_values"][0]["source"]
    written = _written(source)
    nb = _with(source, forward_values=slip, **{written[-1]: "YOUR ANSWER HERE"})
    proc = _check(nb, tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    lines = _lines(out)
    state = lines["forward_values"][1]
    assert state.startswith("failed: ") and "\n" not in state, out
    assert "bias" in state, f"the hint for forgotten biases is missing: {state}"
    assert not TRACEBACK.search(out), out
    for name in written[:-1]:
        assert lines[name][1] == "written answer: waiting for the instructor", out
    assert lines[written[-1]][1] == "written answer: empty", out
    passed = [n for n, (_, s) in lines.items() if s == "passed"]
    auto = {n: p for n, p in _points(source).items() if n not in written}
    assert set(passed) == set(auto) - {"forward_values"}, out
    got = sum(auto[n] for n in passed)
    assert f"visible checks pass for {got:g} of {sum(auto.values()):g} autograded points" in out
    assert "nothing attempted" not in out


def test_error_reply_without_output_is_a_failure(student, tmp_path):
    """An answer that silences IPython's tracebacks still fails the checks after it."""
    nb = _with(
        student,
        forward_values="get_ipython().showtraceback = lambda *a, **k: None\n"
        "h1, h2, y = 0.0, 3.0, 12.0",
    )
    proc = _check(nb, tmp_path)
    lines = _lines(proc.stdout)
    assert lines["forward_values"][1].startswith("failed"), proc.stdout
    assert all(s != "passed" for n, (_, s) in lines.items() if n != "forward_values"), proc.stdout
