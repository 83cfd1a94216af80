"""discover: the submitted/ tree as grading tasks, one per (student, assignment).

Every folder under SUBMISSIONS gets a task (a row in grades.csv) or a logged reason: odd, hidden
or linked names are invalid, known assignments missing for a student are missing, unknown
assignment folders are invalid. Nothing here opens a notebook.
"""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .config import NAME_RE, UserError

MAX_BYTES = 20 << 20
# files nbgrader's exchange puts beside a collected submission (kept for its feedback commands)
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Task:
    student: str
    assignment: str
    folder: Path | None
    status: str | None = None  # set when decided without running (invalid/missing)
    reason: str = ""
    key: str = ""


def read_regular(path, limit=MAX_BYTES):
    """Bytes of a regular file, refusing symlinks and files over `limit` (ValueError)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise ValueError("%s is a symbolic link" % Path(path).name) from None
        raise ValueError("%s cannot be read (%s)" % (Path(path).name, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("%s is not a regular file" % Path(path).name)
        if st.st_size > limit:
            raise ValueError(
                "%s is %.1f MB, over the %d MB limit"
                % (Path(path).name, st.st_size / 2**20, limit >> 20)
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError("%s is over the %d MB limit" % (Path(path).name, limit >> 20))
        return data
    finally:
        os.close(fd)


def discover(subdir, known, log):
    """Every folder under subdir as a Task: one per (student, assignment); odd, hidden,
    linked or unknown folders get an invalid or missing Task with the reason (never silence).
    Returns (tasks sorted by student and assignment, the assignments in scope)."""
    students = {}
    for entry in sorted(os.listdir(subdir)):
        path = subdir / entry
        if entry.startswith("."):
            if path.is_dir() and not path.is_symlink():
                students[entry] = (
                    "invalid",
                    "hidden folder name %r (starts with a dot)" % entry,
                )
            else:
                log.write(
                    "autograder: ignoring hidden entry %r at the top of the submissions\n" % entry
                )
            continue
        if path.is_symlink():
            students[entry] = ("invalid", "student folder is a symbolic link")
        elif not path.is_dir():
            log.write("autograder: ignoring file %s at the top of the submissions\n" % entry)
        elif not NAME_RE.match(entry):
            students[entry] = ("invalid", "odd student folder name %r" % entry)
        else:
            students[entry] = None
    if not students:
        raise UserError(
            "no student folders in %s (expected <student>/<assignment>/<notebook>.ipynb)" % subdir
        )
    scope, extra = set(), []
    for student, problem in students.items():
        if problem:
            continue
        for entry in sorted(os.listdir(subdir / student)):
            path = subdir / student / entry
            if entry in known:
                scope.add(entry)
            elif path.is_dir() and not entry.startswith("."):
                extra.append(
                    Task(student, entry, path, "invalid", "unknown assignment folder %r" % entry)
                )
    tasks = list(extra)
    for student, problem in students.items():
        for assignment in sorted(scope):
            if problem:
                tasks.append(Task(student, assignment, None, *problem))
                continue
            folder = subdir / student / assignment
            if not folder.exists() and not folder.is_symlink():
                tasks.append(
                    Task(student, assignment, None, "missing", "no folder %s" % assignment)
                )
            elif folder.is_symlink() or not folder.is_dir():
                tasks.append(
                    Task(
                        student,
                        assignment,
                        folder,
                        "invalid",
                        "%s is a symbolic link or not a folder" % assignment,
                    )
                )
            else:
                tasks.append(Task(student, assignment, folder))
    if not tasks:
        raise UserError(
            "no assignment folders of known assignments (%s) in %s" % (", ".join(known), subdir)
        )
    return sorted(tasks, key=lambda t: (t.student, t.assignment)), sorted(scope)
