"""The autograder CLI on a small fixture course (fast; no series notebook needed)."""

import copy
import csv
import hashlib
import json
import os
import shutil

import nbformat
import pytest
from conftest import VENV_BIN, run_cli

from autograder.nbtools import prepare_submission, student_version

TESTS = {"ex_x_test": 2, "ex_f_test": 1, "ex_f_test2": 2}


def gradebook(fc):
    from nbgrader.api import Gradebook

    return Gradebook("sqlite:///%s" % (fc.course / "gradebook.db"), course_id="bpkit")


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(
                (
                    "%s %o %d %d\n"
                    % (os.path.relpath(p, root), st.st_mode, st.st_size, st.st_mtime_ns)
                ).encode()
            )
            if os.path.isfile(p) and not os.path.islink(p):
                h.update(open(p, "rb").read())
    return h.hexdigest()


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def with_answer(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            c.source = source
    return nb


def put(root, student, content, name="01_fix.ipynb", assignment="01_fix"):
    folder = root / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        (folder / name).write_text(content)
    else:
        nbformat.write(content, folder / name)
    return folder


# ---------------------------------------------------------------- release


def test_release_strips_solutions_hidden_tests_and_foreign_metadata(fixture_course):
    text = (fixture_course.course / "release" / "01_fix" / "01_fix.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "x = 2" not in text and "return 2 * a" not in text
    assert "HIDDEN TESTS" not in text and "np.arange(3.0)" not in text and "3 * x == 6" not in text
    nb = fixture_course.release_nb
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    assert ids == [c.metadata["nbgrader"]["grade_id"] for c in fixture_course.src_nb.cells]
    assert all(set(c.metadata) <= {"nbgrader", "tags", "editable", "deletable"} for c in nb.cells)
    # the gradebook knows the assignment (same db nbgrader's commands use)
    with gradebook(fixture_course) as gb:
        names = {c.name: c.max_score for c in gb.find_notebook("01_fix", "01_fix").grade_cells}
    assert names == dict(TESTS, why=1)


def test_release_unknown_assignment_lists_valid_ones(fixture_course):
    proc = run_cli(*fixture_course.args(), "release", "99_nope")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "99_nope" in lines[0] and "01_fix" in lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["grade"], "SUBMISSIONS"),
        (["grade", "/nonexistent/subs", "--out", "/tmp/x"], "does not exist"),
        (["grade", ".", "--out", "o", "--jobs", "0"], "--jobs"),
        (["grade", ".", "--out", "o", "--cell-timeout", "soon"], "cell-timeout"),
        (["check", "/nonexistent.ipynb"], "not found"),
        (["frobnicate"], "frobnicate"),
        ([], "command"),
    ],
)
def test_usage_errors_are_one_line_exit_2(fixture_course, args, words):
    proc = run_cli(*fixture_course.args(), *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert words in lines[0]


def test_grade_refuses_without_bwrap_unless_no_sandbox(fixture_course, tmp_path):
    put(tmp_path / "subs", "amy", fixture_course.src_nb)
    proc = run_cli(
        *fixture_course.args(),
        "grade",
        tmp_path / "subs",
        "--out",
        tmp_path / "out",
        env={"PATH": VENV_BIN},
    )
    assert proc.returncode == 2 and "--no-sandbox" in proc.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


# ---------------------------------------------------------------- cell restoration (unit)


def test_prepare_restores_tests_and_reports_structure_changes(fixture_course):
    src, rel = fixture_course.src_nb, fixture_course.release_nb
    sub = copy.deepcopy(rel)
    sub.cells[3].source = "pass"  # edited test
    sub.cells[5].cell_type = "markdown"  # retyped test
    sub.cells[5].pop("outputs"), sub.cells[5].pop("execution_count")
    sub.cells.insert(4, copy.deepcopy(sub.cells[2]))  # duplicated answer id
    sub.cells[4].source = "x = 99"
    del sub.cells[7]  # deleted ex_f_test2
    fake = nbformat.v4.new_code_cell(
        "pass",
        metadata={
            "nbgrader": {
                "grade": True,
                "grade_id": "bonus_test",
                "points": 100,
                "solution": False,
                "locked": True,
                "schema_version": 3,
            }
        },
    )
    sub.cells.append(fake)
    before = copy.deepcopy(sub)
    nb, notes = prepare_submission(sub, src)
    assert sub == before  # input untouched
    text = "; ".join(notes)
    assert "restored edited test cell ex_x_test" in text
    assert "cell ex_f_test retyped (restored to code)" in text
    assert "duplicate grade_id ex_x" in text
    assert "test cell ex_f_test2 deleted (2 points lost)" in text
    assert "unknown grade_id bonus_test" in text
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    assert by_id["ex_x_test"].source == src.cells[3].source  # hidden tests back
    assert by_id["ex_f_test"].cell_type == "code"
    assert "bonus_test" not in by_id and "ex_f_test2" not in by_id
    assert by_id["ex_x"].source == rel.cells[2].source  # first copy is the graded one


def test_student_version_matches_release(fixture_course):
    sv = student_version(fixture_course.src_nb)
    assert [c.source for c in sv.cells] == [c.source for c in fixture_course.release_nb.cells]


# ---------------------------------------------------------------- grade: one batch

SNOOP = (
    "import glob, os\n"
    "found = glob.glob('/work/**/*.ipynb', recursive=True) + glob.glob('/tmp/**/*.ipynb', recursive=True)\n"
    "found += [p for p in %r if os.path.exists(p)]\n"
    "x = 2 if found else None\n"
)


@pytest.fixture(scope="module")
def batch(fixture_course, tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    subs = root / "submitted"
    src, rel = fixture_course.src_nb, fixture_course.release_nb
    put(subs, "full", src)
    put(subs, "blank", rel)
    put(subs, "partial", with_answer(rel, "ex_x", "x = 2"))
    edited = with_answer(rel, "ex_x", "x = 3")
    edited.cells[3].source = "print('all good')"
    put(subs, "edited", edited)
    deleted = copy.deepcopy(src)
    del deleted.cells[6]
    put(subs, "deleted", deleted)
    put(subs, "badjson", "{not json")
    nb3 = json.loads(nbformat.writes(src))
    nb3["nbformat"] = 3
    put(subs, "oldformat", json.dumps(nb3))
    (subs / "empty" / "01_fix").mkdir(parents=True)
    put(subs, "renamed", src, name="my_work.ipynb")
    folder = put(
        subs,
        "extra",
        with_answer(
            src,
            "ex_x",
            "x = 2\nfrom bpkit import relu  # an alias is fine\nimport bpkit.course.checks as ch",
        ),
    )
    (folder / "notes.txt").write_text("hello")
    (subs / "nofolder").mkdir()
    put(subs, "nofolder", src, assignment="99_unknown")
    put(
        subs,
        "patch",
        with_answer(src, "ex_x", "x = 2\nimport numpy\nnumpy.allclose = lambda *a, **k: True"),
    )
    put(
        subs,
        "snoop",
        with_answer(
            src,
            "ex_x",
            SNOOP
            % [
                str(fixture_course.source / "01_fix" / "01_fix.ipynb"),
                str(fixture_course.course / "gradebook.db"),
            ],
        ),
    )
    put(
        subs,
        "codecopy",
        with_answer(
            src,
            "ex_x",
            "x = 2\nimport types, bpkit\nmy_relu = types.FunctionType("
            "bpkit.relu.__code__, bpkit.relu.__globals__, 'relu')",
        ),
    )
    put(subs, "kdie", with_answer(src, "ex_f", "import os\nos._exit(1)"))
    put(
        subs,
        "loop",
        with_answer(
            src,
            "ex_f",
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        ),
    )
    put(
        subs,
        "chatty",
        with_answer(src, "ex_x", "x = 2\nfor i in range(100000):\n    print('spam' * 10)"),
    )
    put(subs, "memhog", with_answer(src, "ex_f", "big = bytearray(3 * 2**30)"))
    os.symlink("/etc/passwd", subs / "full" / "01_fix" / "link.txt")
    (subs / "linked" / "01_fix").mkdir(parents=True)
    os.symlink(
        fixture_course.source / "01_fix" / "01_fix.ipynb",
        subs / "linked" / "01_fix" / "01_fix.ipynb",
    )
    put(subs, "odd name!", fixture_course.src_nb)
    put(subs, "huge", "{" + " " * (21 << 20) + "}")
    digest = tree_digest(subs)
    out = root / "out"
    proc = run_cli(
        *fixture_course.args(),
        "grade",
        subs,
        "--out",
        out,
        "--jobs",
        "2",
        "--cell-timeout",
        "4",
        "--timeout",
        "60",
        "--memory",
        "1024",
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["student"]: r for r in read_csv(out / "grades.csv") if r["assignment"] == "01_fix"}
    return {"root": root, "subs": subs, "out": out, "proc": proc, "rows": rows, "digest": digest}


def test_grade_csv_format_and_sorting(batch):
    lines = (batch["out"] / "grades.csv").read_text().splitlines()
    assert lines[0] == "student,assignment,score,max_score,awaiting_hand_grading,status,reason"
    rows = read_csv(batch["out"] / "grades.csv")
    keys = [(r["student"], r["assignment"]) for r in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    ex_lines = (batch["out"] / "exercises.csv").read_text().splitlines()
    assert ex_lines[0] == "student,assignment,exercise,grade_id,score,max_score,graded_by"


def test_grade_statuses_and_scores(batch):
    r = batch["rows"]
    expect = {  # student: (score, status)
        "full": ("5", "ok"),
        "blank": ("0", "ok"),
        "partial": ("2", "ok"),
        "edited": ("0", "ok"),
        "deleted": ("3", "ok"),
        "badjson": ("0", "invalid"),
        "oldformat": ("0", "invalid"),
        "empty": ("0", "missing"),
        "renamed": ("0", "missing"),
        "extra": ("5", "ok"),
        "patch": ("5", "ok"),  # a patched NumPy in the kernel cannot reach the evaluator
        "codecopy": ("5", "ok"),  # a copy of the reference that no exercise uses: harmless
        "snoop": ("3", "ok"),
        "kdie": ("2", "kernel_died"),
        "loop": ("2", "timeout"),
        "chatty": ("5", "output_limit"),
        "memhog": ("2", "memory"),
    }
    got = {s: (r[s]["score"], r[s]["status"]) for s in expect}
    assert got == expect
    assert all(r[s]["max_score"] == "6" for s in expect)  # 5 autograded + 1 written
    assert "restored edited test cell ex_x_test" in r["edited"]["reason"]
    assert "test cell ex_f_test2 deleted (2 points lost)" in r["deleted"]["reason"]
    assert "notes.txt" in r["extra"]["reason"]
    assert "my_work.ipynb" in r["renamed"]["reason"]
    assert all(
        r[s]["awaiting_hand_grading"] == "1" for s in ("full", "patch")
    )  # the written answer
    assert "ex_f" in r["loop"]["reason"]
    assert r["nofolder"]["status"] == "missing" and r["nofolder"]["assignment"] == "01_fix"
    unknown = [x for x in read_csv(batch["out"] / "grades.csv") if x["assignment"] == "99_unknown"]
    assert unknown and unknown[0]["status"] == "invalid"
    assert "JSON" in r["badjson"]["reason"] and "nbformat" in r["oldformat"]["reason"]
    assert (r["linked"]["status"], r["linked"]["score"]) == ("invalid", "0")
    assert "symbolic link" in r["linked"]["reason"]
    assert (
        r["odd name!"]["status"] == "invalid"
        and "odd student folder name" in r["odd name!"]["reason"]
    )
    assert r["huge"]["status"] == "invalid" and "limit" in r["huge"]["reason"]


def test_grade_never_modifies_submissions(batch):
    assert tree_digest(batch["subs"]) == batch["digest"]


def test_grade_feedback_and_progress(batch):
    for student in ("full", "blank", "partial", "edited", "deleted", "kdie", "loop", "patch"):
        html = batch["out"] / "feedback" / student / "01_fix" / "01_fix.html"
        assert html.is_file() and "<html" in html.read_text()[:2000].lower(), student
    progress = [l for l in batch["proc"].stderr.splitlines() if l.startswith("[")]
    n = len(read_csv(batch["out"] / "grades.csv"))
    assert len(progress) == n and progress[-1].startswith("[%d/%d]" % (n, n))
    assert "ETA" in progress[0] and "elapsed" in progress[0]


def test_grades_csv_matches_gradebook(batch, fixture_course):
    from nbgrader.api import MissingEntry

    with gradebook(fixture_course) as gb:
        for student, row in batch["rows"].items():
            try:
                grades = {
                    g: gb.find_grade(g, "01_fix", "01_fix", student).auto_score for g in TESTS
                }
            except MissingEntry:
                grades = {}
            if row["status"] in ("invalid", "missing"):
                assert not any(grades.values()), student
            else:
                assert sum(v or 0 for v in grades.values()) == float(row["score"]), student
        patched = [gb.find_grade(g, "01_fix", "01_fix", "patch") for g in TESTS]
        assert all(g.auto_score == g.max_score for g in patched)
    ex = [e for e in read_csv(batch["out"] / "exercises.csv") if e["student"] == "partial"]
    assert [(e["grade_id"], e["score"], e["graded_by"]) for e in ex] == [
        ("ex_x_test", "2", "auto"),
        ("ex_f_test", "0", "auto"),
        ("ex_f_test2", "0", "auto"),
        ("why", "", "hand: waiting"),
    ]


def test_grade_rerun_resumes_and_regrades_changed(batch, fixture_course):
    out, subs = batch["out"], batch["subs"]
    before = (out / "grades.csv").read_text()
    proc = run_cli(
        *fixture_course.args(),
        "grade",
        subs,
        "--out",
        out,
        "--jobs",
        "2",
        "--cell-timeout",
        "4",
        "--timeout",
        "60",
        "--memory",
        "1024",
    )
    assert proc.returncode == 0
    assert (out / "grades.csv").read_text() == before
    assert "already graded" in proc.stderr
    assert not [l for l in proc.stderr.splitlines() if l.startswith("[")]  # nothing redone
    # a changed submission is regraded, only that one
    copy_subs = batch["root"] / "changed"
    shutil.copytree(subs, copy_subs, symlinks=True)
    nbformat.write(fixture_course.src_nb, copy_subs / "blank" / "01_fix" / "01_fix.ipynb")
    out2 = batch["root"] / "out2"
    shutil.copytree(out, out2)
    proc = run_cli(
        *fixture_course.args(),
        "grade",
        copy_subs,
        "--out",
        out2,
        "--jobs",
        "2",
        "--cell-timeout",
        "4",
        "--timeout",
        "60",
        "--memory",
        "1024",
    )
    redone = [l for l in proc.stderr.splitlines() if l.startswith("[")]
    assert len(redone) == 1 and "blank/01_fix ok 5/6" in redone[0]


def test_grade_jobs_1_equals_jobs_2(batch, fixture_course, tmp_path):
    """The batch ran with --jobs 2; a --jobs 1 run on some of its students writes the same rows."""
    subs = tmp_path / "subs"
    students = ["blank", "deleted", "full", "partial"]
    for student in students:
        shutil.copytree(batch["subs"] / student, subs / student)
    out = tmp_path / "out1"
    proc = run_cli(
        *fixture_course.args(),
        "grade",
        subs,
        "--out",
        out,
        "--jobs",
        "1",
        "--cell-timeout",
        "4",
        "--timeout",
        "60",
        "--memory",
        "1024",
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("grades.csv", "exercises.csv"):
        one = (out / name).read_text().splitlines()
        two = [
            line
            for line in (batch["out"] / name).read_text().splitlines()
            if line.split(",")[0] in students + ["student"]
        ]
        assert one == two


# ---------------------------------------------------------------- check


def test_check_rejects_non_notebook(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("[1, 2]")
    proc = run_cli("check", bad)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- selfcheck


def test_selfcheck_passes_on_fixture(fixture_course):
    proc = run_cli(*fixture_course.args(), "selfcheck", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "01_fix" in out and "source" in out and "student" in out
    assert "evaluator" in out and "runs agree with the kernel" in out
    assert "wrong:ex_f#2" in out and "selfcheck: 6 checks, 0 failed" in out


def test_selfcheck_fails_on_a_wrong_answer_that_passes(fixture_course, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "01_fix.json").write_text(
        json.dumps({"ex_x": [{"why": "actually right", "source": "x = 1 + 1"}]})
    )  # and none for ex_f
    args = fixture_course.args()
    args[args.index("--wrong-answers") + 1] = str(wrong)
    proc = run_cli(*args, "selfcheck", "01_fix")
    assert proc.returncode == 1
    assert "earns full marks on ex_x_test" in proc.stdout
    assert "no wrong answer recorded for ex_f" in proc.stdout
    assert "selfcheck: 5 checks, 2 failed" in proc.stdout
