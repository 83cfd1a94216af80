"""A shared PostgreSQL gradebook: two graders at the same time, disjoint students, one database.

Against a real PostgreSQL server started by tests/services.py. Afterwards every student has one
submission and one grade row per grade cell, the scores are those the fixture notebook defines
(and those of a single-process SQLite run), and nbgrader's own `nbgrader export` and formgrader's
API read the same grades from the database.
"""

import copy
import csv
import os
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import REPO, VENV_BIN, FixtureCourse, run_cli
from services import postgres_server  # noqa: F401 (fixture)

A = "01_fix"
POINTS = {"ex_x_test": 2.0, "ex_f_test": 1.0, "ex_f_test2": 2.0, "why": 1.0}  # fixture notebook


def _answer(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    cell.source = source
    return nb


def _submissions(src, rel):
    """student -> (notebook, expected auto score per test cell), from the fixture's definition:
    ex_x_test needs x == 2; ex_f_test needs f(1) == 2; ex_f_test2 needs f(a) == 2a on [0, 1, 2]."""
    full = {"ex_x_test": 2.0, "ex_f_test": 1.0, "ex_f_test2": 2.0}
    zero = dict.fromkeys(full, 0.0)
    return {
        # grader 1
        "ana": (src, full),
        "ben": (rel, zero),
        "cy": (_answer(src, "ex_x", "x = -2"), dict(full, ex_x_test=0.0)),
        "dee": (_answer(rel, "ex_x", "x = 2"), dict(zero, ex_x_test=2.0)),
        # grader 2
        "eve": (src, full),
        "fay": (_answer(src, "ex_f", "def f(a):\n    return a"), dict(zero, ex_x_test=2.0)),
        "gus": (_answer(src, "ex_f", "def f(a):\n    return 2"), dict(full, ex_f_test2=0.0)),
        "hal": (rel, zero),
    }


GRADER_1, GRADER_2 = ["ana", "ben", "cy", "dee"], ["eve", "fay", "gus", "hal"]


def _write_tree(root, subs, students):
    for s in students:
        (root / s / A).mkdir(parents=True)
        nbformat.write(subs[s][0], root / s / A / (A + ".ipynb"))
    return root


def _env(**extra):
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO)
    for k in ("BPKIT_COURSE_DIR", "BPKIT_SOURCE_DIR", "BPKIT_DB_URL"):
        env.pop(k, None)
    env.update(extra)
    return env


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _release_state(url, fc):
    """Row versions (PostgreSQL's xmin) of the assignment's notebook and cell rows, and the
    released notebook's inode: a re-release deletes and re-inserts the rows (same ids, new xmin)
    and rewrites the release folder."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                text(
                    "SELECT 'notebook', id, xmin::text FROM notebook UNION ALL "
                    "SELECT 'cell', id, xmin::text FROM base_cell ORDER BY 1, 2"
                )
            ).all()
    finally:
        engine.dispose()
    released = fc.course / "release" / A / (A + ".ipynb")
    return [tuple(r) for r in rows], released.stat().st_ino if released.exists() else None


def _gradebook_cells(url):
    """(student, grade cell) -> (auto_score, manual_score, needs_manual_grade), via nbgrader's API."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(url, course_id="bpkit") as gb:
        for st in gb.students:
            sub = gb.find_submission(A, st.id)
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[(st.id, g.name)] = (g.auto_score, g.manual_score, g.needs_manual_grade)
    return out


def _grade(fc, tree, out, *, db_url=None):
    """Start `python -m autograder ... grade` (not waited for)."""
    db = ["--db-url", db_url] if db_url else []
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", *fc.args(), *db, "grade", tree, "--out", out]
        + ["--no-sandbox"],  # the sandbox has nothing to do with the gradebook: save its cost
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """All students graded by one process into a SQLite gradebook (the default)."""
    root = tmp_path_factory.mktemp("sqlite")
    ref = FixtureCourse(root / "course")
    assert run_cli(*ref.args(), "release").returncode == 0
    rel = nbformat.read(ref.course / "release" / A / (A + ".ipynb"), as_version=4)
    subs = _submissions(ref.src_nb, rel)
    tree = _write_tree(root / "submitted", subs, GRADER_1 + GRADER_2)
    t0 = time.monotonic()
    proc = _grade(ref, tree, root / "out")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    sys.stderr.write("test_postgres: one grader into SQLite %.1f s\n" % (time.monotonic() - t0))
    assert (ref.course / "gradebook.db").is_file()
    return dict(
        subs=subs,
        cells=_gradebook_cells("sqlite:///" + str(ref.course / "gradebook.db")),
        rows=_read_csv(root / "out" / "grades.csv"),
    )


@pytest.fixture(scope="module", params=["released", "empty database"])
def graded(request, postgres_server, reference, tmp_path_factory):  # noqa: F811
    """Two `grade` processes started together on disjoint students, one PostgreSQL database:
    after `release` into it ("released"), or on a database nobody has used yet."""
    start = request.param
    url = postgres_server.create_database("concurrent_" + start.replace(" ", "_"))
    root = tmp_path_factory.mktemp("pg")
    fc = FixtureCourse(root / "course")
    released = None
    if start == "released":
        proc = run_cli(*fc.args(), "--db-url", url, "release", env={"BPKIT_DB_URL": ""})
        assert proc.returncode == 0, proc.stderr
        released = _release_state(url, fc)
    subs = reference["subs"]  # same notebooks: release versions do not depend on the course
    trees = [
        _write_tree(root / "submitted1", subs, GRADER_1),
        _write_tree(root / "submitted2", subs, GRADER_2),
    ]
    t0 = time.monotonic()
    procs = [_grade(fc, t, root / ("out%d" % i), db_url=url) for i, t in enumerate(trees, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    sys.stderr.write(
        "test_postgres: two graders into PostgreSQL (%s) %.1f s\n" % (start, time.monotonic() - t0)
    )
    return dict(
        url=url,
        fc=fc,
        subs=subs,
        reference=reference,
        released=released,
        after=_release_state(url, fc),
        exits=[(p.returncode, err[-3000:]) for p, (_, err) in zip(procs, outs)],
        rows=[
            row
            for i in (1, 2)
            if (root / ("out%d" % i) / "grades.csv").exists()
            for row in _read_csv(root / ("out%d" % i) / "grades.csv")
        ],
    )


def test_both_graders_finish(graded):
    for code, err in graded["exits"]:
        assert code == 0, err
    assert not (graded["fc"].course / "gradebook.db").exists(), "wrote SQLite, not PostgreSQL"


def test_grading_leaves_the_released_assignment_alone(graded):
    """Grading must not re-release (delete and re-create) an assignment already in the database:
    a grader doing so under another's feet deletes the rows the other is writing against."""
    if graded["released"] is None:
        pytest.skip("nothing released before grading")
    assert graded["after"] == graded["released"]


def test_each_student_has_one_submission_and_one_grade_per_cell(graded):
    from sqlalchemy import create_engine, text

    engine = create_engine(graded["url"])
    try:
        with engine.connect() as db:
            one = lambda sql: db.execute(text(sql)).scalar()
            assert one("SELECT count(*) FROM assignment") == 1
            assert one("SELECT count(*) FROM notebook") == 1
            cells = dict(
                db.execute(
                    text(
                        "SELECT bc.name, gc.max_score FROM grade_cells gc "
                        "JOIN base_cell bc ON gc.id = bc.id"
                    )
                ).all()
            )
            assert cells == POINTS
            subs = db.execute(
                text("SELECT student_id, count(*) FROM submitted_assignment GROUP BY student_id")
            ).all()
            assert dict(subs) == dict.fromkeys(GRADER_1 + GRADER_2, 1)
            assert one("SELECT count(*) FROM submitted_notebook") == 8
            grades = db.execute(
                text(
                    "SELECT sa.student_id, bc.name, count(*) FROM grade g "
                    "JOIN submitted_notebook sn ON g.notebook_id = sn.id "
                    "JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
                    "JOIN base_cell bc ON g.cell_id = bc.id "
                    "GROUP BY sa.student_id, bc.name"
                )
            ).all()
            assert {(s, c): n for s, c, n in grades} == {
                (s, c): 1 for s in GRADER_1 + GRADER_2 for c in POINTS
            }
            assert one("SELECT count(*) FROM grade") == 8 * len(POINTS)
    finally:
        engine.dispose()


def test_scores_are_the_notebooks_and_equal_a_single_sqlite_run(graded):
    cells = _gradebook_cells(graded["url"])
    for student, (_, expected) in graded["subs"].items():
        for cell, auto in expected.items():
            assert cells[(student, cell)] == (auto, None, False), (student, cell)
        # the written answer waits for a human
        assert cells[(student, "why")] == (None, None, True), student
    assert cells == graded["reference"]["cells"]
    key = lambda r: (r["student"], r["assignment"])
    strip = lambda rows: sorted(
        (
            {k: r[k] for k in ("student", "assignment", "score", "max_score", "status")}
            for r in rows
        ),
        key=key,
    )
    assert strip(graded["rows"]) == strip(graded["reference"]["rows"])
    for r in graded["rows"]:
        assert float(r["score"]) == sum(graded["subs"][r["student"]][1].values())
        assert float(r["max_score"]) == sum(POINTS.values())


def test_nbgrader_export_reads_the_postgres_gradebook(graded, tmp_path):
    target = tmp_path / "export.csv"
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "nbgrader"), "export", "--to", str(target)],
        cwd=REPO / "autograder",
        env=_env(BPKIT_COURSE_DIR=str(graded["fc"].course), BPKIT_DB_URL=graded["url"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    exported = {r["student_id"]: r for r in _read_csv(target) if r["assignment"] == A}
    assert set(exported) == set(graded["subs"])
    for student, (_, expected) in graded["subs"].items():
        assert float(exported[student]["raw_score"]) == sum(expected.values()), student
        assert float(exported[student]["max_score"]) == sum(POINTS.values())


def test_autograder_export_reads_the_postgres_gradebook(graded, tmp_path):
    out = tmp_path / "grades.csv"
    proc = run_cli(
        *graded["fc"].args(), "--db-url", graded["url"], "export", "--format", "csv", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    totals = {r["student"]: float(r["total"]) for r in _read_csv(out)}
    assert totals == {s: sum(e.values()) for s, (_, e) in graded["subs"].items()}


def test_formgrader_api_reads_the_postgres_gradebook(graded, monkeypatch):
    """What formgrader shows comes from NbGraderAPI (nbgrader.apps.api): submissions, students,
    and the per-notebook view used for manual grading."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv("BPKIT_COURSE_DIR", str(graded["fc"].course))
    monkeypatch.setenv("BPKIT_SOURCE_DIR", str(graded["fc"].source))
    monkeypatch.setenv("BPKIT_DB_URL", graded["url"])
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ["PATH"])
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "autograder")).load_config()
    assert cfg.CourseDirectory.db_url == graded["url"]
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    subs = {s["student"]: s for s in api.get_submissions(A)}
    assert set(subs) == set(graded["subs"])
    for student, (_, expected) in graded["subs"].items():
        assert subs[student]["score"] == sum(expected.values()), student
        assert subs[student]["max_score"] == sum(POINTS.values())
        assert subs[student]["needs_manual_grade"] is True
    students = {s["id"]: s for s in api.get_students()}
    assert {s: students[s]["score"] for s in graded["subs"]} == {
        s: sum(e.values()) for s, (_, e) in graded["subs"].items()
    }
    nb_subs = api.get_notebook_submissions(A, A)
    assert sorted(s["student"] for s in nb_subs) == sorted(graded["subs"])
    assert all(s["needs_manual_grade"] for s in nb_subs)


def test_postgres_is_opt_in_and_bad_urls_are_one_line_errors(tmp_path):
    fc = FixtureCourse(tmp_path / "c")
    bad = run_cli(*fc.args(), "--db-url", "not a url", "release", env={"BPKIT_DB_URL": ""})
    assert bad.returncode == 2
    assert bad.stderr.startswith("autograder: error: bad database URL")
    assert len(bad.stderr.strip().splitlines()) == 1
    down = run_cli(
        *fc.args(),
        "release",
        env={"BPKIT_DB_URL": "postgresql+psycopg://u:secret@127.0.0.1:9/x"},
    )
    assert down.returncode == 2
    assert down.stderr.startswith("autograder: error: cannot use the gradebook database")
    assert "secret" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    assert not (fc.course / "gradebook.db").exists()
