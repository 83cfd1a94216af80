"""The whole course loop on a real series notebook: release -> students submit -> grade (sandboxed)
-> CSVs, feedback, gradebook seen by nbgrader's own `nbgrader export` run from autograder/."""

import copy
import csv
import os
import subprocess

import nbformat
import pytest
from conftest import REPO, VENV_BIN, run_cli, series_notebooks

CANDIDATES = ["01_chain_rule", "05_worked_example"]
PRESENT = [p.stem for p in series_notebooks() if p.stem in CANDIDATES]
pytestmark = pytest.mark.skipif(not PRESENT, reason="no series notebook %s yet" % CANDIDATES)


def nbg(cell):
    return cell.metadata.get("nbgrader", {})


def grade_cells_of(nb):
    return [c for c in nb.cells if nbg(c).get("grade") and c.cell_type == "code"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    name = PRESENT[0]
    root = tmp_path_factory.mktemp("loop")
    course = root / "course"
    proc = run_cli("--course", course, "release", name)
    assert proc.returncode == 0, proc.stderr
    src = nbformat.read(REPO / "notebooks" / name / (name + ".ipynb"), as_version=4)
    rel = nbformat.read(course / "release" / name / (name + ".ipynb"), as_version=4)
    subs = root / "submitted"
    points = {nbg(c)["grade_id"]: float(nbg(c)["points"]) for c in grade_cells_of(src)}
    first_ex = next(
        nbg(c)["grade_id"]
        for c in src.cells
        if nbg(c).get("solution")
        and c.cell_type == "code"
        and any(g.startswith(nbg(c)["grade_id"] + "_test") for g in points)
    )
    partial = copy.deepcopy(rel)
    for c_rel, c_src in zip(partial.cells, src.cells):
        if nbg(c_rel).get("grade_id") == first_ex:
            c_rel.source = c_src.source
    edited = copy.deepcopy(rel)
    edited_id = nbg(grade_cells_of(edited)[0])["grade_id"]
    grade_cells_of(edited)[0].source = "pass  # removed the check"
    deleted = copy.deepcopy(src)
    deleted_id = nbg(grade_cells_of(deleted)[-1])["grade_id"]
    deleted.cells.remove(grade_cells_of(deleted)[-1])
    for student, nb in [
        ("solved", src),
        ("untouched", rel),
        ("partial", partial),
        ("edited", edited),
        ("deleted", deleted),
    ]:
        (subs / student / name).mkdir(parents=True)
        nbformat.write(nb, subs / student / name / (name + ".ipynb"))
    out = root / "out"
    proc = run_cli("--course", course, "grade", subs, "--out", out, "--jobs", "2", timeout=900)
    assert proc.returncode == 0, proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return dict(
        name=name,
        course=course,
        out=out,
        rows=rows,
        points=points,
        first_ex=first_ex,
        edited_id=edited_id,
        deleted_id=deleted_id,
        rel=rel,
        root=root,
    )


def test_release_has_no_solution_and_no_hidden_test(loop):
    text = (loop["course"] / "release" / loop["name"] / (loop["name"] + ".ipynb")).read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text


def test_scores(loop):
    r, total = loop["rows"], sum(loop["points"].values())
    assert r["solved"]["status"] == "ok" and float(r["solved"]["score"]) == total
    assert r["untouched"]["status"] == "ok" and float(r["untouched"]["score"]) == 0
    ex_points = sum(
        p for g, p in loop["points"].items() if g.startswith(loop["first_ex"] + "_test")
    )
    assert float(r["partial"]["score"]) >= ex_points > 0
    assert float(r["partial"]["score"]) < total
    assert float(r["edited"]["score"]) == 0
    assert "restored edited test cell %s" % loop["edited_id"] in r["edited"]["reason"]
    assert float(r["deleted"]["score"]) == total - loop["points"][loop["deleted_id"]]
    assert loop["deleted_id"] in r["deleted"]["reason"]


def test_feedback_for_each(loop):
    for student in loop["rows"]:
        assert (
            loop["out"] / "feedback" / student / loop["name"] / (loop["name"] + ".html")
        ).is_file()


def test_nbgrader_export_from_autograder_folder_matches_grades_csv(loop):
    env = dict(
        os.environ,
        PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
        BPKIT_COURSE_DIR=str(loop["course"]),
    )
    target = loop["root"] / "export.csv"
    proc = subprocess.run(
        [os.path.join(VENV_BIN, "nbgrader"), "export", "--to", str(target)],
        cwd=REPO / "autograder",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(target, newline="") as f:
        exported = {
            r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == loop["name"]
        }
    for student, row in loop["rows"].items():
        assert float(exported[student]["raw_score"]) == float(row["score"]), student
        assert float(exported[student]["max_score"]) == float(row["max_score"]), student


def test_check_on_untouched_release(loop, tmp_path):
    path = tmp_path / (loop["name"] + ".ipynb")
    nbformat.write(loop["rel"], path)
    proc = run_cli("check", path, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # nothing attempted is not "all fine"
    assert "not attempted" in proc.stdout and "0 passed, 0 failed" in proc.stdout
    assert "nothing attempted yet" in proc.stdout


def test_nbgrader_autograde_agrees_with_grade(loop, tmp_path):
    """nbgrader's own generate_assignment + autograde (run from autograder/, same config) give the
    same score as `python -m autograder grade` for the partly answered notebook."""
    env = dict(
        os.environ,
        PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
        BPKIT_COURSE_DIR=str(tmp_path / "course"),
    )
    name = loop["name"]

    def nbgrader(*args):
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "nbgrader"), *args],
            cwd=REPO / "autograder",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]

    nbgrader("generate_assignment", name)
    for student in ("partial",):
        dest = tmp_path / "course" / "submitted" / student / name
        dest.mkdir(parents=True)
        src = loop["root"] / "submitted" / student / name / (name + ".ipynb")
        dest.joinpath(name + ".ipynb").write_bytes(src.read_bytes())
    nbgrader("autograde", name)
    nbgrader("export", "--to", str(tmp_path / "export.csv"))
    with open(tmp_path / "export.csv", newline="") as f:
        exported = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    assert exported == {"partial": float(loop["rows"]["partial"]["score"])}
