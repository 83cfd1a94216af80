"""export: the gradebook as a file an LMS imports (Canvas, Moodle) or as a plain CSV.

Points per student and assignment are what nbgrader counts: for every grade cell the hand-given
score when there is one, else the automatic score (plus extra credit). A student with no
submission for an assignment gets 0.

Formats (the column layouts each LMS's import reads):
- canvas: `Student,ID,SIS User ID,SIS Login ID,Section,<assignment>...`, then a
  `    Points Possible` row, then one row per student. Canvas's gradebook import matches a student
  by ID (Canvas user id), then SIS User ID, then SIS Login ID, then name; an assignment column by
  the id in `Title (123)`, else by title, else it creates the assignment with the points of the
  Points Possible row.
- moodle: `First name,Last name,ID number,Email address,<assignment>...`: in Moodle's "Import
  grades from CSV", map "Email address" to useremail (or "ID number" to useridnumber) and each
  assignment column to its grade item (or "new grade item").
- csv: `student,assignment,auto,manual,total,max,awaiting_hand_grading`, one row per student and
  assignment (auto and manual empty when there is no submission).

Roster (--roster FILE, CSV with a header): maps gradebook student ids to LMS identities. Column
names are matched ignoring case, spaces and underscores. The gradebook id is the `student_id`
column (else `SIS Login ID`, else `username`); LMS fields: `name` or `Student`, `first_name`,
`last_name`, `canvas_id` or `ID`, `SIS User ID`, `SIS Login ID`, `Section`, `email` or
`Email address`, `idnumber` or `ID number`, `username`. A gradebook CSV exported from Canvas is a
valid roster as it is (its SIS Login ID is taken as the gradebook id, and its `Title (123)`
assignment headers are reused so that Canvas updates those assignments). Without a roster the
identities come from the gradebook (name, email, lms_user_id as Canvas ID, the student id as SIS
Login ID). Gradebook students missing from the roster are reported on stderr and written with
blank LMS fields, never dropped; roster students without submissions get 0.
"""

import csv
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import UserError
from .nbtools import fmt

FORMATS = ("canvas", "moodle", "csv")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS = (
    "    Points Possible"  # as in Canvas's own export; the import matches /Points Possible/
)
MOODLE_HEADER = ["First name", "Last name", "ID number", "Email address"]
CSV_HEADER = ["student", "assignment", "auto", "manual", "total", "max", "awaiting_hand_grading"]
ROSTER_FIELDS = {  # normalised roster header -> field
    "student_id": "student_id",
    "name": "name",
    "student": "name",
    "first_name": "first_name",
    "firstname": "first_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "canvas_id": "canvas_id",
    "id": "canvas_id",
    "sis_user_id": "sis_user_id",
    "sis_login_id": "sis_login_id",
    "section": "section",
    "email": "email",
    "email_address": "email",
    "idnumber": "idnumber",
    "id_number": "idnumber",
    "username": "username",
}
KEY_FIELDS = ("student_id", "sis_login_id", "username")  # the gradebook id, first present wins
TITLE_AND_ID = re.compile(r"^(.*\S)\s+\((\d+)\)$")  # Canvas: "Title (123)"


@dataclass
class Identity:
    student_id: str
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    idnumber: str = ""
    username: str = ""


@dataclass
class Score:
    auto: float = 0.0
    manual: float = 0.0
    awaiting: bool = False
    submitted: bool = False

    @property
    def total(self):
        return self.auto + self.manual


@dataclass
class Book:
    assignments: list  # names, sorted
    max_score: dict  # assignment -> points
    students: dict  # id -> Identity from the gradebook
    scores: dict = field(default_factory=dict)  # (student, assignment) -> Score


def _norm(name):
    return re.sub(r"[\s_]+", "_", name.strip().lower())


def read_gradebook(course, only=()):
    """Everything the exports need, read once through nbgrader's Gradebook API."""
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    url = course.db_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise UserError("no gradebook at %s: release and grade first" % url[len("sqlite:///") :])
    engine = create_engine(url)
    try:
        if "assignment" not in inspect(engine).get_table_names():
            raise UserError("the gradebook %s is empty: release and grade first" % course.db_shown)
    except SQLAlchemyError as exc:
        raise UserError("cannot read the gradebook %s: %s" % (course.db_shown, exc)) from None
    finally:
        engine.dispose()
    warnings.filterwarnings("ignore", module="nbgrader")
    with Gradebook(url, course_id="bpkit") as gb:
        names = sorted(a.name for a in gb.assignments)
        if not names:
            raise UserError("the gradebook has no assignments: release first")
        bad = [a for a in only if a not in names]
        if bad:
            raise UserError(
                "assignment %s not in the gradebook; it has: %s"
                % (", ".join(bad), ", ".join(names))
            )
        names = [a for a in names if not only or a in only]
        book = Book(
            assignments=names,
            max_score={a: float(gb.find_assignment(a).max_score) for a in names},
            students={},
        )
        for st in gb.students:
            book.students[st.id] = Identity(
                student_id=st.id,
                first_name=st.first_name or "",
                last_name=st.last_name or "",
                email=st.email or "",
                canvas_id=str(st.lms_user_id or ""),
                sis_login_id=st.id,
            )
            for a in names:
                score = Score()
                try:
                    sub = gb.find_submission(a, st.id)
                except MissingEntry:
                    book.scores[(st.id, a)] = score
                    continue
                score.submitted = True
                for nb in sub.notebooks:
                    for g in nb.grades:
                        # nbgrader's Grade.score: manual else auto, + extra credit (given by hand)
                        if g.manual_score is not None:
                            score.manual += float(g.manual_score) + float(g.extra_credit or 0)
                        elif g.auto_score is not None:
                            score.auto += float(g.auto_score)
                            score.manual += float(g.extra_credit or 0)
                        score.awaiting = score.awaiting or bool(g.needs_manual_grade)
                book.scores[(st.id, a)] = score
    return book


def read_roster(path):
    """(list of Identity in file order, {assignment title: Canvas column header}, notes)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError("cannot read roster %s: %s" % (path, exc)) from None
    except csv.Error as exc:
        raise UserError("roster %s is not a CSV file: %s" % (path, exc)) from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise UserError("roster %s is empty (expected a header row, e.g. student_id,email)" % path)
    header = [_norm(h) for h in rows[0]]
    columns = {}
    canvas_columns = {}
    for i, (raw, h) in enumerate(zip(rows[0], header)):
        if h in ROSTER_FIELDS and ROSTER_FIELDS[h] not in columns:
            columns[ROSTER_FIELDS[h]] = i
        m = TITLE_AND_ID.match(raw.strip())
        if m:
            canvas_columns[m.group(1)] = raw.strip()
    key = next((k for k in KEY_FIELDS if k in columns), None)
    if key is None:
        raise UserError(
            "roster %s has no student_id column (nor SIS Login ID or username); its columns: %s"
            % (path, ", ".join(rows[0]))
        )
    people, seen, skipped = [], {}, []
    for line, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if row and "Points Possible" in row[0]:  # Canvas's own export: not a student
            continue
        values = {f: (row[i].strip() if i < len(row) else "") for f, i in columns.items()}
        if not values[key]:  # e.g. Canvas's "Student, Test" row
            skipped.append(str(line))
            continue
        if values[key] in seen:
            raise UserError(
                "roster %s line %d: student %s already on line %d"
                % (path, line, values[key], seen[values[key]])
            )
        seen[values[key]] = line
        values["student_id"] = values[key]
        people.append(Identity(**values))
    notes = []
    if skipped:
        notes.append(
            "roster line%s %s without %s skipped"
            % ("" if len(skipped) == 1 else "s", ", ".join(skipped), key)
        )
    return people, canvas_columns, notes


def _display_name(ident):
    if ident.name:
        return ident.name
    if ident.last_name or ident.first_name:
        return ", ".join(p for p in (ident.last_name, ident.first_name) if p)
    return ident.student_id


MERGED = ("first_name", "last_name", "email", "canvas_id")  # blank in the roster: gradebook's


def _rows(book, roster):
    """[(Identity, known_in_roster)] in output order, and the gradebook ids missing from it.
    Gradebook students missing from the roster keep their name but no LMS id."""
    if roster is None:
        return [(book.students[s], True) for s in sorted(book.students)], []
    rows = []
    for person in roster:
        mine = book.students.get(person.student_id)
        if mine is not None:
            for f in MERGED:
                if not getattr(person, f):
                    setattr(person, f, getattr(mine, f))
        rows.append((person, True))
    listed = {p.student_id for p in roster}
    missing = sorted(s for s in book.students if s not in listed)
    for s in missing:
        mine = book.students[s]
        rows.append((Identity(s, first_name=mine.first_name, last_name=mine.last_name), False))
    return rows, missing


def _score(book, student, a):
    return book.scores.get((student, a)) or Score()


def write_export(book, fmt_name, out, roster=None, canvas_columns=None):
    """Write one export to the text stream `out`; returns the list of warnings (strings)."""
    people, missing = _rows(book, roster)
    warnings = []
    if missing:
        warnings.append(
            "%d gradebook student%s not in the roster (written with blank LMS ids): %s"
            % (len(missing), "" if len(missing) == 1 else "s", ", ".join(missing))
        )
    awaiting = ["%s/%s" % key for key in sorted(book.scores) if book.scores[key].awaiting]
    if awaiting:
        warnings.append(
            "%d submission%s still need hand grading (exported with the points given so far): %s"
            % (len(awaiting), "" if len(awaiting) == 1 else "s", ", ".join(awaiting))
        )
    w = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what both LMS imports read
    if fmt_name == "canvas":
        columns = [(canvas_columns or {}).get(a, a) for a in book.assignments]
        w.writerow(CANVAS_HEADER + columns)
        w.writerow(
            [CANVAS_POINTS, "", "", "", ""] + [fmt(book.max_score[a]) for a in book.assignments]
        )
        for ident, _ in people:
            ids = [ident.canvas_id, ident.sis_user_id, ident.sis_login_id, ident.section]
            w.writerow(
                [_display_name(ident), *ids]
                + [fmt(_score(book, ident.student_id, a).total) for a in book.assignments]
            )
        if not any(
            known and (p.canvas_id or p.sis_user_id or p.sis_login_id) for p, known in people
        ):
            warnings.append(
                "no student has a Canvas ID, SIS User ID or SIS Login ID: Canvas will match by name only"
            )
    elif fmt_name == "moodle":
        w.writerow(MOODLE_HEADER + book.assignments)
        no_id = []
        for ident, known in people:
            first, last = ident.first_name, ident.last_name
            if not (first or last):
                last = _display_name(ident)
            ids = [ident.idnumber, ident.email]
            if known and not any(ids):
                no_id.append(ident.student_id)
            w.writerow(
                [first, last, *ids]
                + [fmt(_score(book, ident.student_id, a).total) for a in book.assignments]
            )
        if no_id:
            warnings.append(
                "%d student%s with neither email nor ID number (Moodle cannot match them): %s"
                % (len(no_id), "" if len(no_id) == 1 else "s", ", ".join(no_id))
            )
    else:
        w.writerow(CSV_HEADER)
        for ident, _ in sorted(people, key=lambda p: p[0].student_id):
            for a in book.assignments:
                s = _score(book, ident.student_id, a)
                w.writerow(
                    [
                        ident.student_id,
                        a,
                        fmt(s.auto) if s.submitted else "",
                        fmt(s.manual) if s.submitted else "",
                        fmt(s.total),
                        fmt(book.max_score[a]),
                        "yes" if s.awaiting else "no",
                    ]
                )
    return warnings


def export(course, fmt_name, out_path, roster_path=None, assignments=(), log=sys.stderr):
    if fmt_name not in FORMATS:
        raise UserError("unknown format %r; choose one of: %s" % (fmt_name, ", ".join(FORMATS)))
    roster, canvas_columns, notes = None, {}, []
    if roster_path is not None:
        roster, canvas_columns, notes = read_roster(roster_path)
    book = read_gradebook(course, assignments)
    if out_path == "-":
        warnings = write_export(book, fmt_name, sys.stdout, roster, canvas_columns)
    else:
        target = Path(out_path)
        if target.is_dir():
            raise UserError("--out %s is a folder; give a file name" % out_path)
        if not target.parent.is_dir():
            raise UserError("--out %s: folder %s does not exist" % (out_path, target.parent))
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="." + target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                warnings = write_export(book, fmt_name, f, roster, canvas_columns)
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
    for message in notes + warnings:
        log.write("autograder: export: %s\n" % message)
    if out_path != "-":
        students = len(_rows(book, roster)[0])
        sys.stdout.write(
            "exported %d student%s x %d assignment%s (%s) -> %s\n"
            % (
                students,
                "" if students == 1 else "s",
                len(book.assignments),
                "" if len(book.assignments) == 1 else "s",
                fmt_name,
                out_path,
            )
        )
    return 0
