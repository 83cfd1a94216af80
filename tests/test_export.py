"""`python -m autograder export --format canvas|moodle|csv`: the gradebook in the layouts the LMS
imports read, with hand-graded points, a roster, and students missing from it reported.

The expected header rows come from the LMS documentation (cited at each constant), the expected
points from the fixture notebook's definition (conftest.fixture_notebook) and from nbgrader's own
`nbgrader export`, never from the exporter.
"""

import copy
import csv
import os
import re
import subprocess

import nbformat
import pytest
from conftest import REPO, VENV_BIN, FixtureCourse, run_cli

A = "01_fix"
MAX = 6.0  # ex_x_test 2 + ex_f_test 1 + ex_f_test2 2 + written answer "why" 1

# Canvas gradebook import. Documented layout: the first columns Student, ID, SIS User ID,
# SIS Login ID, Section, then one column per assignment ("Assignment Name", optionally with the
# Canvas id in parentheses), and the "Points Possible" row Canvas writes second in its own export
# (https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/
# import-csv-file-carmen-grades; Canvas's parser, instructure/canvas-lms
# app/models/gradebook_importer.rb: header? / update_column_count / check_for_non_student_row /
# Assignment.title_and_id).
CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]

# Moodle "Import grades from CSV" (https://docs.moodle.org/311/en/Grade_import): "the import file
# format is the same as the corresponding export format"; the user is identified by mapping a
# column to useremail ("Email address") or useridnumber ("ID number"), and every other column is
# mapped to a grade item or a new grade item (grade/import/grade_import_form.php: mapfrom/mapto
# userid, username, useridnumber, useremail). Column names as in Moodle's grade export.
MOODLE_USER_COLUMNS = ["First name", "Last name", "ID number", "Email address"]

PLAIN_COLUMNS = ["student", "assignment", "auto", "manual", "total", "max", "awaiting_hand_grading"]

# what each submission earns by the fixture notebook's definition (auto), and the written answer
# graded by hand below (manual)
AUTO = {"alice": 5.0, "bob": 3.0, "carol": 0.0, "eve": 5.0}
MANUAL = {"alice": 1.0, "bob": 0.5}

ROSTER = [
    # student_id, name, canvas id, SIS user id, SIS login id, section, email, idnumber
    ["alice", "Lovelace, Ada", "101", "S-1", "alice", "A", "ada@uni.example", "1001"],
    ["bob", "Babbage, Charles", "102", "S-2", "bob", "A", "cb@uni.example", "1002"],
    ["carol", "Shaw, Carol", "103", "S-3", "carol", "B", "carol@uni.example", "1003"],
    ["dave", "Cutler, Dave", "104", "S-4", "dave", "B", "dave@uni.example", "1004"],  # no work
]  # eve submitted but is not on the roster


def _answer(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    cell.source = source
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Four graded submissions in a SQLite gradebook; written answers of alice and bob graded by
    hand through nbgrader's Gradebook API (what formgrader does)."""
    from nbgrader.api import Gradebook

    fc = FixtureCourse(tmp_path_factory.mktemp("export"))
    assert run_cli(*fc.args(), "release").returncode == 0
    rel = nbformat.read(fc.course / "release" / A / (A + ".ipynb"), as_version=4)
    subs = {
        "alice": fc.src_nb,
        "bob": _answer(fc.src_nb, "ex_x", "x = -2"),
        "carol": rel,
        "eve": fc.src_nb,
    }
    for student, nb in subs.items():
        (fc.root / "submitted" / student / A).mkdir(parents=True)
        nbformat.write(nb, fc.root / "submitted" / student / A / (A + ".ipynb"))
    proc = run_cli(
        *fc.args(), "grade", fc.root / "submitted", "--out", fc.root / "out", "--no-sandbox"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Gradebook("sqlite:///" + str(fc.course / "gradebook.db"), course_id="bpkit") as gb:
        for student, points in MANUAL.items():
            grade = gb.find_grade("why", A, A, student)
            grade.manual_score = points
            grade.needs_manual_grade = False
            gb.db.commit()
    with open(fc.root / "roster.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["student_id", "name", "canvas_id", "sis_user_id", "sis_login_id", "section"]
            + ["email", "idnumber"]
        )
        w.writerows(ROSTER)
    return fc


def export(fc, *args):
    return run_cli(*fc.args(), "export", *args, env={"BPKIT_DB_URL": ""})


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def total(student):
    return AUTO.get(student, 0.0) + MANUAL.get(student, 0.0)


def test_canvas_layout_points_and_roster(course, tmp_path):
    out = tmp_path / "canvas.csv"
    proc = export(
        course, "--format", "canvas", "--roster", course.root / "roster.csv", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    header, points, students = rows[0], rows[1], rows[2:]
    assert header == CANVAS_STUDENT_COLUMNS + [A]
    # Canvas's header check: Student, ID, then SIS User ID + SIS Login ID, last info column Section
    assert re.search("Student", header[0]) and re.search("ID", header[1])
    assert re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3])
    assert re.search("Section", header[4])
    assert "Points Possible" in points[0] and points[1:5] == ["", "", "", ""]
    assert float(points[5]) == MAX
    by_login = {r[3]: r for r in students if r[3]}
    for sid, name, cid, sis, login, section, _, _ in ROSTER:
        row = by_login[login]
        assert row[:5] == [name, cid, sis, login, section]
        assert float(row[5]) == total(sid), sid
    # eve: not on the roster: kept, blank LMS ids, reported on stderr
    (eve,) = [r for r in students if not r[3]]
    assert eve[:5] == ["eve", "", "", "", ""] and float(eve[5]) == total("eve")
    assert len(students) == 5
    assert "not in the roster" in proc.stderr and "eve" in proc.stderr
    assert "carol/01_fix" in proc.stderr  # her written answer still waits for a grader


def test_canvas_gradebook_export_as_roster_keeps_assignment_ids(course, tmp_path):
    """A CSV exported from Canvas (as in its documentation: Points Possible row, assignment
    headers "Title (id)", read-only score columns) serves as the roster unchanged."""
    roster = tmp_path / "canvas_export.csv"
    with open(roster, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CANVAS_STUDENT_COLUMNS + ["%s (4321)" % A, "Current Score", "Final Score"])
        w.writerow(["    Points Possible", "", "", "", "", "6.00", "(read only)", "(read only)"])
        for _, name, cid, sis, login, section, _, _ in ROSTER:
            w.writerow([name, cid, sis, login, section, "", "", ""])
        w.writerow(["Student, Test", "999", "", "", "A", "", "", ""])  # Canvas's test student
    out = tmp_path / "canvas.csv"
    proc = export(course, "--format", "canvas", "--roster", roster, "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert rows[0] == CANVAS_STUDENT_COLUMNS + ["%s (4321)" % A]
    scores = {r[3]: float(r[5]) for r in rows[2:] if r[3]}
    assert scores == {r[4]: total(r[0]) for r in ROSTER}
    assert "Student, Test" not in out.read_text()
    assert "line 7 without sis_login_id skipped" in proc.stderr
    assert "eve" in proc.stderr


def test_moodle_layout_maps_users_by_email_and_idnumber(course, tmp_path):
    out = tmp_path / "moodle.csv"
    proc = export(
        course, "--format", "moodle", "--roster", course.root / "roster.csv", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert rows[0] == MOODLE_USER_COLUMNS + [A]
    with open(out, newline="") as f:
        records = list(csv.DictReader(f))
    by_email = {r["Email address"]: r for r in records if r["Email address"]}
    for sid, _, _, _, _, _, email, idnumber in ROSTER:
        assert by_email[email]["ID number"] == idnumber
        assert float(by_email[email][A]) == total(sid), sid
    (eve,) = [r for r in records if not r["Email address"]]
    assert eve["ID number"] == "" and float(eve[A]) == total("eve")
    assert "eve" in proc.stderr


def test_plain_csv_splits_auto_and_manual_and_matches_nbgrader_export(course, tmp_path):
    out = tmp_path / "grades.csv"
    proc = export(course, "--format", "csv", "--roster", course.root / "roster.csv", "--out", out)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == PLAIN_COLUMNS
        rows = {r["student"]: r for r in reader}
    assert set(rows) == {"alice", "bob", "carol", "dave", "eve"}
    for s in ("alice", "bob", "carol", "eve"):
        r = rows[s]
        assert (float(r["auto"]), float(r["manual"])) == (AUTO[s], MANUAL.get(s, 0.0)), s
        assert float(r["total"]) == total(s) and float(r["max"]) == MAX
        assert r["awaiting_hand_grading"] == ("no" if s in MANUAL else "yes"), s
    assert rows["dave"]["auto"] == rows["dave"]["manual"] == ""
    assert float(rows["dave"]["total"]) == 0 and rows["dave"]["awaiting_hand_grading"] == "no"
    # nbgrader's own export of the same gradebook (run from autograder/, as instructors do)
    theirs = tmp_path / "nbgrader.csv"
    nbg = subprocess.run(
        [os.path.join(VENV_BIN, "nbgrader"), "export", "--to", str(theirs)],
        cwd=REPO / "autograder",
        env=dict(
            os.environ,
            PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
            BPKIT_COURSE_DIR=str(course.course),
            BPKIT_DB_URL="",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert nbg.returncode == 0, nbg.stderr[-2000:]
    with open(theirs, newline="") as f:
        nbgrader_totals = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    assert nbgrader_totals == {s: float(rows[s]["total"]) for s in nbgrader_totals}
    assert set(nbgrader_totals) == {"alice", "bob", "carol", "eve"}


def test_without_roster_everyone_in_the_gradebook_is_exported(course, tmp_path):
    out = tmp_path / "canvas.csv"
    proc = export(course, "--format", "canvas", "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert rows[0] == CANVAS_STUDENT_COLUMNS + [A]
    logins = {r[3]: float(r[5]) for r in rows[2:]}
    assert logins == {s: total(s) for s in AUTO}
    assert "not in the roster" not in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "blackboard"], "unknown format 'blackboard'"),
        (["--format", "csv", "--roster", "/nonexistent/roster.csv"], "cannot read roster"),
        (["--format", "csv", "--roster", "ROSTER_NO_ID"], "has no student_id column"),
        (["--format", "csv", "--roster", "ROSTER_DUP"], "already on line 2"),
        (["--format", "csv", "nosuch"], "assignment nosuch not in the gradebook"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(course, tmp_path, args, message):
    no_id = tmp_path / "no_id.csv"
    no_id.write_text("name,email\nAda,ada@uni.example\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("student_id,email\nalice,a@x\nalice,b@x\n")
    args = [{"ROSTER_NO_ID": no_id, "ROSTER_DUP": dup}.get(a, a) for a in args]
    out = tmp_path / "out.csv"
    proc = export(course, *args, "--out", out)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("autograder: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_no_gradebook_is_an_error_not_an_empty_file(tmp_path):
    fc = FixtureCourse(tmp_path / "c")
    proc = export(fc, "--format", "csv", "--out", tmp_path / "x.csv")
    assert proc.returncode == 2 and "no gradebook" in proc.stderr
    assert not (fc.course / "gradebook.db").exists()
