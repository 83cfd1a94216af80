"""Every series notebook: committed clean (no outputs), valid nbgrader schema-3 metadata with unique
grade_ids, and `python -m autograder selfcheck` passes for it (source full marks in < 15 s, student
version scores 0 with a message per test, every recorded wrong answer loses points)."""

import json

import nbformat
import pytest
from conftest import run_cli, series_notebooks

NOTEBOOKS = series_notebooks()
IDS = [p.stem for p in NOTEBOOKS]
REQUIRED = {"schema_version", "grade", "solution", "locked", "grade_id"}

pytestmark = pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks/NN_slug/NN_slug.ipynb yet")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_clean_and_valid(path):
    raw = json.loads(path.read_text())
    nb = nbformat.reads(path.read_text(), as_version=4)
    nbformat.validate(nb)
    assert raw["nbformat"] == 4
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], "cell %d has outputs" % i
            assert cell.get("execution_count") is None, "cell %d has an execution count" % i
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(nb)  # nbgrader's own schema-3 check: raises on bad metadata
    ids = []
    for i, cell in enumerate(nb.cells):
        md = cell.metadata.get("nbgrader")
        assert md is not None, "cell %d has no nbgrader metadata" % i
        assert REQUIRED <= set(md), "cell %d lacks %s" % (i, REQUIRED - set(md))
        assert md["schema_version"] == 3
        if md["grade"]:
            assert md.get("points", 0) > 0, "grade cell %s has no points" % md["grade_id"]
        ids.append(md["grade_id"])
    assert len(ids) == len(set(ids)), "duplicate grade_ids: %s" % sorted(
        {g for g in ids if ids.count(g) > 1}
    )
    answers = {
        c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata["nbgrader"]["solution"]
    }
    from autograder.nbtools import exercises

    for ex in exercises(nb):
        assert ex in answers, "test cells %s_test* have no answer cell %r" % (ex, ex)


def _selfcheck_table(course):
    # the evaluator's agreement on every wrong answer takes a kernel per answer (about 400 in
    # all): here the source, the student version and each exercise's first wrong answer
    proc = run_cli(
        "--course", course, "selfcheck", "--jobs", "2", "--evaluator", "first", timeout=1500
    )
    assert proc.returncode in (0, 1), proc.stderr
    table = {}
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[0][:2].isdigit():
            table.setdefault(parts[0], []).append(
                [parts[1], parts[2], parts[3] if len(parts) > 3 else ""]
            )
    return table


@pytest.fixture(scope="session")
def selfcheck_table(tmp_path_factory):
    """One selfcheck run over every notebook: {assignment: [[check, result, detail]]}. Under
    xdist the first worker to ask runs it and the others read its result (one run per session)."""
    import fcntl
    import os

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        return _selfcheck_table(tmp_path_factory.mktemp("selfcheck_course"))
    shared = tmp_path_factory.getbasetemp().parent
    result = shared / ("selfcheck-%s.json" % run)
    with open(shared / ("selfcheck-%s.lock" % run), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.exists():
            return json.loads(result.read_text())
        table = _selfcheck_table(tmp_path_factory.mktemp("selfcheck_course"))
        result.write_text(json.dumps(table))
        return table


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_selfcheck(selfcheck_table, path):
    rows = selfcheck_table.get(path.stem)
    assert rows, "selfcheck printed nothing for %s" % path.stem
    checks = {r[0] for r in rows}
    assert {"source", "student", "evaluator"} <= checks
    failed = [r for r in rows if r[1] != "ok"]
    assert not failed, "\n".join("%s: %s" % (r[0], r[2]) for r in failed)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_locks_and_run_all_tags(path):
    """Locked and test cells cannot be edited or deleted in JupyterLab; answer and test cells carry
    raises-exception so Run All goes on past an unanswered exercise (authoring normalize sets it)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        md, meta = cell.metadata["nbgrader"], cell.metadata
        where = "%s cell %s" % (path.name, md["grade_id"])
        is_test = cell.cell_type == "code" and md["grade"]
        if md["locked"] or is_test:
            assert meta.get("editable") is False and meta.get("deletable") is False, where
        if cell.cell_type == "code" and (md["grade"] or md["solution"]):
            assert "raises-exception" in meta.get("tags", []), where


def test_release_keeps_locks_and_tags():
    from autograder.nbtools import student_version

    nb = student_version(nbformat.read(NOTEBOOKS[0], as_version=4))
    locked = [c for c in nb.cells if c.metadata["nbgrader"]["locked"]]
    assert locked and all(c.metadata.get("editable") is False for c in locked)
    tests = [c for c in nb.cells if c.cell_type == "code" and c.metadata["nbgrader"]["grade"]]
    assert tests and all("raises-exception" in c.metadata.get("tags", []) for c in tests)


def test_coverage_places_exist():
    """notebooks/COVERAGE.md stays current: every notebook/grade_id it names is a cell."""
    import re

    ids = {
        p.parent.name: {
            c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(p, as_version=4).cells
        }
        for p in NOTEBOOKS
    }
    text = (NOTEBOOKS[0].parents[1] / "COVERAGE.md").read_text()
    places = re.findall(r"\b(\d\d_[a-z0-9_]+)/([A-Za-z0-9_-]+)", text)
    assert len(places) > 100
    missing = [f"{nb}/{gid}" for nb, gid in places if gid not in ids.get(nb, ())]
    assert not missing, f"COVERAGE.md names cells that do not exist: {missing[:10]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_has_alt_text(path):
    """A cell that shows a figure (a top-level plt.show()) is followed, before the next code cell,
    by a markdown cell with an "Alt text" description for readers who cannot see the plot."""
    cells = nbformat.read(path, as_version=4).cells
    missing = []
    for i, cell in enumerate(cells):
        lines = cell.source.splitlines() if cell.cell_type == "code" else []
        if not any(line.startswith("plt.show()") for line in lines):
            continue
        after = []
        for nxt in cells[i + 1 :]:
            if nxt.cell_type == "code":
                break
            after.append(nxt.source.lower())
        if not any("alt text" in text for text in after):
            missing.append(cell.metadata["nbgrader"]["grade_id"])
    assert not missing, f"{path.name}: figures without alt text after them: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_carries_the_notebook_number(path):
    """The first heading is "# NN · Title" with the number of the notebook's folder (renumbering
    the series must renumber the titles too)."""
    first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
    assert first.startswith(f"# {path.stem[:2]} · "), f"{path.name} starts with {first!r}"


def test_readme_series_table_matches_the_notebooks():
    """README's series table lists every notebook in order with its autograded and written
    points as the notebooks' nbgrader metadata give them."""
    import re

    from autograder.nbtools import graded_cells

    readme = (NOTEBOOKS[0].parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(\d\d_[a-z0-9_]+)` \| [^|]+ \| (\d+) \| (\d+) \|", readme, re.M)
    assert [r[0] for r in rows] == IDS
    for (name, auto, written), path in zip(rows, NOTEBOOKS):
        points = {"test": 0.0, "written": 0.0}
        for g in graded_cells(nbformat.read(path, as_version=4)):
            points[g["kind"]] += g["points"]
        assert (int(auto), int(written)) == (points["test"], points["written"]), name


def test_coverage_count_is_current_and_meets_the_goal():
    """COVERAGE.md's count line is what its rows add up to, every Y row names a cell, and at least
    95% of the items of both inventories are Y (issue: "Done when")."""
    import re

    text = (NOTEBOOKS[0].parents[1] / "COVERAGE.md").read_text()
    row = re.compile(r"^\| [^|]+ \|(?: [^|]+ \|)? (Y|~|-)(?: \((\d+) items\))? \| ([^|]*) \|$")
    total, unplaced = {"Y": 0, "~": 0, "-": 0}, []
    for line in text.splitlines():
        m = row.match(line)
        if m:
            total[m.group(1)] += int(m.group(2) or 1)
            if m.group(1) == "Y" and not re.search(r"\d\d_[a-z0-9_]+/\w+", m.group(3)):
                unplaced.append(line[:60])
    n = sum(total.values())
    stated = re.search(
        r"Counted over both inventories: (\d+) items, Y (\d+) .*~ (\d+), - (\d+)\.", text
    )
    assert stated and [int(v) for v in stated.groups()] == [n, total["Y"], total["~"], total["-"]]
    assert not unplaced, f"Y rows without a notebook/grade_id place: {unplaced}"
    assert total["Y"] >= 0.95 * n, f"coverage {total['Y']}/{n} is under 95%"
