"""python -m autograder.authoring new: a notebook skeleton that follows AUTHORING.md and passes
selfcheck as written."""

import json

import nbformat
import pytest
from conftest import run_cli

from autograder import authoring
from autograder.nbtools import exercises, graded_cells, nbg, student_version

SLUG = "10_example_topic"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("authoring")
    src, wrong = root / "src", root / "wrong"
    code = authoring.main(
        ["new", SLUG, "An example topic", "--source", str(src), "--wrong-answers", str(wrong)]
    )
    assert code == 0
    return root, src / SLUG / f"{SLUG}.ipynb", wrong / f"{SLUG}.json"


def test_skeleton_has_every_part_authoring_asks_for(made):
    _, path, wrong_path = made
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    cells = {nbg(c)["grade_id"]: c for c in nb.cells}
    assert len(cells) == len(nb.cells)  # grade_ids unique
    assert (
        "# 10 · An example topic" in nb.cells[0].source and "Learning goals" in nb.cells[0].source
    )
    setup = nb.cells[1].source
    assert "from bpkit.course import checks" in setup and "default_rng(" in setup
    assert exercises(nb) == {"output_delta": ["output_delta_test"]}
    answer, test = cells["output_delta"], cells["output_delta_test"]
    assert nbg(answer)["solution"] and not nbg(answer)["grade"]
    assert "### BEGIN SOLUTION" in answer.source
    assert "checks.check_array" in test.source and "### BEGIN HIDDEN TESTS" in test.source
    written = [g for g in graded_cells(nb) if g["kind"] == "written"]
    assert [g["grade_id"] for g in written] == ["why_one_half"]
    assert nb.cells[-1].source.startswith("## Summary")
    for cell in nb.cells:  # prose never holds the delimiter words (nbgrader would choke)
        if not nbg(cell).get("solution") and cell.cell_type == "markdown":
            assert "SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
    wrong = json.loads(wrong_path.read_text())
    assert set(wrong) == {"output_delta"} and len(wrong["output_delta"]) >= 1


def test_skeleton_is_normalized(made):
    _, path, _ = made
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    assert nbformat.writes(authoring.normalize(nb)) + "\n" == text
    for cell in nb.cells:
        md = nbg(cell)
        if md["locked"] or md["grade"] and cell.cell_type == "code":
            assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_student_version_keeps_no_solution(made):
    _, path, _ = made
    student = student_version(nbformat.read(path, as_version=4))
    text = "\n".join(c.source for c in student.cells)
    assert "return Y - T" not in text and "HIDDEN" not in text and "YOUR CODE HERE" in text


def test_new_refuses_bad_names_and_existing_files(made, capsys):
    root, path, _ = made
    args = ["--source", str(path.parents[1]), "--wrong-answers", str(root / "wrong")]
    assert authoring.main(["new", SLUG, "Again", *args]) == 2
    assert "exists already" in capsys.readouterr().err
    for bad in ("10-example", "example", "10_Example", "1_x"):
        assert authoring.main(["new", bad, "Title", *args]) == 2
        assert "not a notebook name" in capsys.readouterr().err
    assert not (path.parents[1] / "example").exists()


def test_skeleton_passes_selfcheck(made):
    root, path, wrong_path = made
    proc = run_cli(
        "--course", root / "course", "--source", path.parents[1], "--wrong-answers",
        wrong_path.parent, "selfcheck", SLUG,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split(None, 3) for line in proc.stdout.splitlines() if line.startswith(SLUG)]
    assert {r[1] for r in rows} >= {"source", "student", "wrong:output_delta#1"}
    assert all(r[2] == "ok" for r in rows), proc.stdout
