"""The pieces of the verdict-outside-the-kernel design: the data codec, the name analysis, the
status rules, and one evaluation end to end against a kernel (no sandbox: about 3 s)."""

import json

import nbformat
import numpy as np
import pytest
from conftest import fixture_notebook

from autograder.evaluator import cell_names, plan
from autograder.sandbox import wire
from autograder.score import PRIORITY, score_notebook, worst
from autograder.settings import GraderSettings

# ------------------------------------------------------------------------------------------------
# wire: data round trips, hostile input refused
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        float("inf"),
        "text",
        [1, [2.0, "a"]],
        (1, 2),
        {"a": 1, (1, 2): [3]},
        1 + 2j,
        np.arange(6.0).reshape(2, 3),
        np.array([True, False]),
        np.array([1, 2], dtype=np.int32),
        np.zeros((0, 3)),
    ],
)
def test_wire_round_trip(value):
    got = wire.loads(json.dumps(wire.encode(value)))
    if isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)
    else:
        assert got == value and type(got) is type(value)


def test_wire_numpy_scalars_become_python_numbers():
    assert type(wire.loads(json.dumps(wire.encode(np.float64(1.5))))) is float


def test_wire_objects_need_a_handle():
    class Thing:
        pass

    with pytest.raises(wire.WireError, match="not data"):
        wire.encode(Thing())
    with pytest.raises(wire.WireError, match="not data"):
        wire.encode(np.array([Thing()], dtype=object))
    handle = wire.encode(Thing(), lambda obj: {"$": "ref", "id": 1, "kind": "object", "label": "T"})
    got = wire.decode(handle, lambda i, k, label: ("remote", i, k, label))
    assert got == ("remote", 1, "object", "T")


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"$": "nd", "dtype": "|O", "shape": [1], "b64": ""}', "not numeric"),
        ('{"$": "nd", "dtype": "<f8", "shape": [2], "b64": "AAAA"}', "do not match"),
        ('{"$": "nd", "dtype": "<f8", "shape": [100000000000], "b64": ""}', "shape|MB"),
        ('{"$": "pickle", "v": "gASV"}', "unknown tag"),
        ('{"$": "ref", "id": 1, "kind": "object"}', "not expected"),
        ('{"$": "sympy", "v": "__import__(\'os\')"}', "not expected"),
        ('{"$": "dict", "v": [[[1], 2]]}', "unhashable"),
        ("[" * 100 + "]" * 100, "deep"),
        ("[" * 100000 + "]" * 100000, "deep|JSON"),
        ("{not json", "JSON"),
    ],
)
def test_wire_refuses_hostile_input(text, why):
    with pytest.raises(wire.WireError, match=why):
        wire.loads(text)


def test_wire_caps_sizes():
    with pytest.raises(wire.WireError, match="MB"):
        wire.encode(np.zeros(wire.MAX_BYTES // 8 + 1))
    with pytest.raises(wire.WireError, match="elements"):
        wire.encode(list(range(wire.MAX_ITEMS + 1)))


# ------------------------------------------------------------------------------------------------
# which names are the student's
# ------------------------------------------------------------------------------------------------


def test_cell_names_scopes():
    defined, free = cell_names(
        "import numpy as np\n"
        "def helper(a):\n    h = g(a)\n    return h + y\n"
        "xs = [q * z for q in r]\n"
        "class C:\n    k = w\n"
        "print(answer, xs, len(xs))\n"
    )
    assert defined == {"np", "helper", "xs", "C"}
    assert free == ["g", "y", "r", "z", "w", "answer"]  # builtins and locals excluded


def test_plan_student_names_and_positions():
    src = fixture_notebook()
    steps = {s.grade_id: s for s in plan(src, src)}
    assert steps["setup"].student == [] and steps["setup"].defines >= {"np", "NotAnswered"}
    assert steps["ex_x_test"].student == ["x"] and steps["ex_x_test"].is_test
    assert steps["ex_f_test2"].student == ["f"]
    assert steps["ex_x_test"].position == 3
    deleted = nbformat.from_dict(json.loads(nbformat.writes(src)))
    del deleted.cells[6]
    assert {s.grade_id: s.position for s in plan(src, deleted)}["ex_f_test2"] is None


# ------------------------------------------------------------------------------------------------
# status rules (README "Status rules")
# ------------------------------------------------------------------------------------------------

LIMITS = {"cell_timeout": 30, "timeout": 300, "memory": 2048}
TESTS = [("a_test", 2), ("b_test", 1)]


def _ev(**kw):
    base = {
        "ready": True,
        "error": None,
        "verdicts": {},
        "cells": {},
        "kernel_died": None,
        "stuck": None,
        "deadline": False,
        "memory": False,
        "protocol": None,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "evaluation, status, points",
    [
        (_ev(verdicts={"a_test": {"passed": True}, "b_test": {"passed": True}}), "ok", 3),
        (_ev(verdicts={"a_test": {"passed": True}, "b_test": {"passed": False}}), "ok", 2),
        (_ev(verdicts={"a_test": {"passed": "yes"}}), "ok", 0),  # only True passes
        (_ev(ready=False, error="bwrap failed"), "error", 0),
        ({"killed": True}, "timeout", 0),
        (_ev(protocol="answered out of turn", verdicts={"a_test": {"passed": True}}), "flagged", 2),
        (_ev(memory=True), "memory", 0),
        (_ev(kernel_died=4, memory=True), "memory", 0),
        (_ev(kernel_died=4, verdicts={"a_test": {"passed": True}}), "kernel_died", 2),
        (_ev(cells={"3": {"status": "timeout"}}), "timeout", 0),
        (_ev(deadline=True), "timeout", 0),
        (_ev(cells={"3": {"status": "ok", "truncated": True}}), "output_limit", 0),
        (_ev(error="driver crashed after start"), "kernel_died", 0),
    ],
)
def test_status_rules(evaluation, status, points):
    got = score_notebook(TESTS, evaluation, {3: "a"}, LIMITS)
    assert worst(got.statuses) == status
    assert sum(got.grades.values()) == points
    if status != "ok":
        assert got.reasons


def test_priority_matches_readme():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "autograder" / "README.md").read_text()
    table = readme[readme.index("## Status rules") :]
    order = [s for s in PRIORITY if "| `%s` |" % s in table]
    positions = [table.index("| `%s` |" % s) for s in order]
    assert order == PRIORITY and positions == sorted(positions)


# ------------------------------------------------------------------------------------------------
# one evaluation against a real kernel
# ------------------------------------------------------------------------------------------------


def _evaluate(src, sub):
    from autograder.worker import evaluate

    settings = GraderSettings(sandbox=False, cell_timeout=20, timeout=120)
    return evaluate(
        {
            "source": src,
            "prepared": sub,
            "settings": settings.trait_values_for_job(),
            "sandbox": False,
        }
    )


def test_evaluator_decides_and_ignores_the_kernels_shell():
    src = fixture_notebook()
    sub = nbformat.from_dict(json.loads(nbformat.writes(src)))
    # wrong answers plus a kernel whose tracebacks and asserts are silenced
    sub.cells[2].source = (
        "import builtins\nget_ipython().showtraceback = lambda *a, **k: None\n"
        "builtins.AssertionError = type('A', (Exception,), {})\nx = 3"
    )
    sub.cells[4].source = 'def f(a):\n    """Twice a."""\n    return a'
    result = _evaluate(src, sub)
    verdicts = {g: v["passed"] for g, v in result["verdicts"].items()}
    assert verdicts == {"ex_x_test": False, "ex_f_test": False, "ex_f_test2": False}
    assert "expected 2, got 3" in result["verdicts"]["ex_x_test"]["evalue"]
    right = _evaluate(src, src)
    assert all(v["passed"] for v in right["verdicts"].values()), right["verdicts"]


def test_sympy_answers_cross_as_text_and_compare_equal():
    import sympy as sp

    from autograder.worker import _sympy_reader

    read = _sympy_reader()
    z, w = sp.Symbol("z"), sp.Symbol("w", real=True)
    g = sp.Function("g")
    for expr in (
        3 * w * sp.Derivative(g(z), z) + 2,
        sp.Rational(1, 2) * (w - 1) ** 2,
        sp.Matrix([[w, 1], [2, z]]),
        sp.Subs(sp.Derivative(g(z), z), z, w),
    ):
        sent = json.dumps(wire.encode(expr))
        assert wire.loads(sent, read_sympy=read) == expr
    with pytest.raises(ValueError):
        wire.loads(
            json.dumps({"$": "sympy", "v": "__import__('os').system('true')"}), read_sympy=read
        )


def test_sandbox_uids_are_never_shared_while_held():
    """Each sandbox's uid is locked machine-wide (flock): a second lease, from this or another
    grader run, gets another uid until the first is released."""
    import subprocess
    import sys

    from autograder.launch import SANDBOX_UIDS, UidLease

    first = UidLease()
    try:
        code = (
            "from autograder.launch import UidLease\n"
            "leases = [UidLease() for _ in range(20)]\n"
            "print(' '.join(str(x.uid) for x in leases))\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        uids = [int(u) for u in other.stdout.split()]
        assert first.uid in SANDBOX_UIDS and first.uid not in uids and len(set(uids)) == 20
    finally:
        first.release()


def test_cgroups_left_by_a_killed_grader_are_swept():
    """A grader killed with -9 leaves its sandbox cgroups behind; a later grader (perhaps with the
    same pid) removes those whose grader is gone instead of failing to create its own."""
    import subprocess

    from autograder import launch

    bases = launch._cgroup_dirs()
    if not bases:
        pytest.skip("no writable cgroups on this machine")
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = [base / ("bpkit-%d-0" % gone.pid) for base in set(bases.values())]
    for d in stale:
        d.mkdir()
    launch._swept.clear()
    cgroup = launch.Cgroup(256, 64)
    made = list(cgroup.dirs)
    try:
        assert made and all(d.is_dir() for d in made)
        assert not any(d.exists() for d in stale)
    finally:
        cgroup.destroy()
        for d in stale:
            if d.exists():
                d.rmdir()
    assert not any(d.exists() for d in made)
