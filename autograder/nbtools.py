"""Notebook helpers shared by release, grade, check and selfcheck (host side)."""

import copy
import re

import nbformat

TEST_SUFFIX = re.compile(r"_test\d*$")


def nbg(cell):
    """The cell's nbgrader metadata ({} when absent or not a dict)."""
    md = cell.get("metadata", {}).get("nbgrader", {})
    return md if isinstance(md, dict) else {}


def is_test(cell):
    """An autograded test cell: code, grade: true, with a grade_id."""
    md = nbg(cell)
    return cell.get("cell_type") == "code" and bool(md.get("grade")) and bool(md.get("grade_id"))


def exercise_of(grade_id):
    """'dP_dw1_test2' -> 'dP_dw1' (exercise name of a test cell's grade_id)."""
    return TEST_SUFFIX.sub("", grade_id)


def graded_cells(nb):
    """Source order list of dicts {grade_id, kind ('test'|'written'), points, index}."""
    out = []
    for i, cell in enumerate(nb.cells):
        md = nbg(cell)
        if md.get("grade") and md.get("grade_id"):
            kind = "test" if cell.cell_type == "code" else "written"
            out.append(
                {
                    "grade_id": md["grade_id"],
                    "kind": kind,
                    "points": float(md.get("points", 0) or 0),
                    "index": i,
                }
            )
    return out


def exercises(nb):
    """{exercise: [test grade_ids]} for the autograded tests of a notebook, in source order."""
    ex = {}
    for g in graded_cells(nb):
        if g["kind"] == "test":
            ex.setdefault(exercise_of(g["grade_id"]), []).append(g["grade_id"])
    return ex


def prepare_submission(sub, src):
    """Return (notebook to execute, notes) built from a student's notebook and the source.

    Grade code cells and locked cells get source, type and metadata back from the source
    (hidden tests included); answer cells keep the student's text with the source cell type;
    duplicated grade_ids keep the first copy; grade_ids unknown to the source lose their
    nbgrader metadata. The student's cell order is kept. `sub` is not modified.
    """
    nb = copy.deepcopy(sub)
    src_cells = {}
    for cell in src.cells:
        gid = nbg(cell).get("grade_id")
        if gid:
            src_cells.setdefault(gid, cell)
    notes, seen, order = [], set(), []
    for cell in nb.cells:
        md = nbg(cell)
        gid = md.get("grade_id")
        if gid is not None and not isinstance(gid, str):
            notes.append("cell with a malformed grade_id (a %s) ignored" % type(gid).__name__)
            del cell.metadata["nbgrader"]
            continue
        if not gid:
            if "nbgrader" in cell.get("metadata", {}):
                del cell.metadata["nbgrader"]
            continue
        if gid in seen or gid not in src_cells:
            what = (
                "duplicate grade_id %s: later copies ignored"
                if gid in seen
                else "cell with unknown grade_id %s ignored"
            )
            notes.append(what % (gid if re.fullmatch(r"[\w.-]{1,80}", gid) else repr(gid[:80])))
            del cell.metadata["nbgrader"]
            continue
        seen.add(gid)
        order.append(gid)
        ref = src_cells[gid]
        rmd = nbg(ref)
        if rmd.get("grade") and ref.cell_type == "code" or rmd.get("locked"):
            if cell.cell_type != ref.cell_type:
                notes.append("cell %s retyped (restored to %s)" % (gid, ref.cell_type))
            elif is_test(ref) and cell.get("source", "").strip() not in (
                ref.source.strip(),
                without_hidden_tests(ref.source).strip(),
            ):
                notes.append("restored edited test cell %s" % gid)
            _replace(cell, ref)
        else:
            if cell.cell_type != ref.cell_type:
                notes.append("cell %s retyped (restored to %s)" % (gid, ref.cell_type))
                new = copy.deepcopy(ref)
                new["source"] = cell.get("source", "")
                _replace(cell, new)
            cell.metadata["nbgrader"] = copy.deepcopy(rmd)
    src_order = [g for g in (nbg(c).get("grade_id") for c in src.cells) if g in seen]
    if src_order != order:
        notes.append("grade cells reordered")
    for g in graded_cells(src):
        if g["kind"] == "test" and g["grade_id"] not in seen:
            notes.append(
                "test cell %s deleted (%s points lost)" % (g["grade_id"], fmt(g["points"]))
            )
    return nb, notes


def without_hidden_tests(source):
    """A test cell's source as released (BEGIN/END HIDDEN TESTS regions removed)."""
    out, hidden = [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def _replace(cell, ref):
    keep_outputs = cell.get("outputs")
    cell.clear()
    cell.update(copy.deepcopy(ref))
    if cell.cell_type == "code":
        cell["outputs"] = [] if keep_outputs is None else []
        cell["execution_count"] = None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def fmt(x):
    """Score as text: 3, 2.5, 0.33."""
    if x is None:
        return ""
    x = round(float(x), 2)
    return str(int(x)) if x == int(x) else ("%.2f" % x).rstrip("0")


KEPT_METADATA = ("nbgrader", "tags", "editable", "deletable")


def strip_foreign_metadata(nb):
    """Keep only nbgrader's metadata, tags and the editable/deletable locks on cells (in place);
    returns nb."""
    for cell in nb.cells:
        md = cell.get("metadata", {})
        for key in list(md):
            if key not in KEPT_METADATA:
                del md[key]
    return nb


def student_version(src, config=None):
    """The student notebook nbgrader would release (solutions and hidden tests stripped)."""
    from nbgrader.preprocessors import (
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
    )

    if config is None:  # the course's own settings (code stub, delimiters)
        from pathlib import Path

        from traitlets.config.loader import PyFileConfigLoader

        here = str(Path(__file__).resolve().parent)
        config = PyFileConfigLoader("nbgrader_config.py", path=here).load_config()
    nb = copy.deepcopy(src)
    resources = {}
    for pp in (ClearSolutions, ClearHiddenTests, ClearMarkScheme, ClearOutput):
        nb, resources = pp(config=config).preprocess(nb, resources)
    return strip_foreign_metadata(nb)


def clean_ename(info):
    """Last line of an error as 'Name: value'."""
    ename, evalue = info.get("ename", ""), (info.get("evalue") or "").strip()
    last = evalue.splitlines()[-1] if evalue else ""
    return "%s: %s" % (ename, last) if last else ename


def read_notebook_text(text):
    """Parse and validate notebook JSON text; raises ValueError with a reason."""
    import json

    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not valid JSON (%s)" % str(exc).splitlines()[0][:80]) from None
    if not isinstance(data, dict):
        raise ValueError("not a notebook (JSON %s)" % type(data).__name__)
    major = data.get("nbformat")
    if major != 4:
        raise ValueError("nbformat version %r, expected 4" % (major,))
    from nbformat.v4.rwbase import rejoin_lines, strip_transient

    nb = strip_transient(rejoin_lines(nbformat.from_dict(data)))
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise ValueError(
            "fails nbformat validation (%s)" % str(exc).splitlines()[0][:100]
        ) from None
    return nb
