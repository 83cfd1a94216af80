"""Running the grader CLI and reading what it writes (shared by the grader tests and the benchmark)."""

from __future__ import annotations

import csv
import hashlib
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


def grader_env() -> dict:
    """Environment for grader subprocesses: the venv first on PATH (nbgrader runs `alembic`)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("BPKIT_COURSE_DIR", None)
    env.pop("BPKIT_SOURCE_DIR", None)
    env.pop("BPKIT_DB_URL", None)
    return env


def grader_cmd(course: Path, source: Path, *args: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "autograder",
        "--course",
        str(course),
        "--source",
        str(source),
        *map(str, args),
    ]


def run_grader(
    course: Path, source: Path, *args: str, timeout: float
) -> subprocess.CompletedProcess:
    """Run `python -m autograder --course C --source S ARGS` from the repo root, bounded in time."""
    return subprocess.run(
        grader_cmd(course, source, *args),
        cwd=REPO,
        env=grader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def release(course: Path, source: Path, assignment: str, timeout: float = 120) -> Path:
    """Release one assignment and return the student notebook's path."""
    proc = run_grader(course, source, "release", assignment, timeout=timeout)
    assert proc.returncode == 0, (
        f"release {assignment} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    path = Path(course) / "release" / assignment / f"{assignment}.ipynb"
    assert path.is_file(), f"release did not write {path}"
    return path


def unescape(text: str) -> str:
    """A CSV field as written by the grader with its control characters as \\xNN escapes."""
    import re

    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def grades_by_key(out: Path) -> dict[tuple[str, str], dict]:
    """grades.csv as {(student, assignment): row}; fails on duplicated rows."""
    rows = read_csv(Path(out) / "grades.csv")
    table = {}
    for row in rows:
        key = (unescape(row["student"]), row["assignment"])
        assert key not in table, f"grades.csv has two rows for {key}"
        table[key] = row
    return table


def exercise_scores(out: Path) -> dict[tuple[str, str], dict[str, float]]:
    """exercises.csv as {(student, assignment): {exercise: summed score}} (empty score -> 0)."""
    table: dict[tuple[str, str], dict[str, float]] = {}
    for row in read_csv(Path(out) / "exercises.csv"):
        per = table.setdefault((unescape(row["student"]), row["assignment"]), {})
        per[row["exercise"]] = per.get(row["exercise"], 0.0) + float(row["score"] or 0)
    return table


def tree_digest(root: Path) -> dict[str, tuple]:
    """{relative path: (kind, mode, size or target, content sha256, mtime_ns)} without following
    links and without opening anything but regular files (a FIFO would block)."""
    root = Path(root)
    result = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                result[rel] = ("link", st.st_mode, os.readlink(path), None, st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                result[rel] = ("file", st.st_mode, st.st_size, digest.hexdigest(), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                result[rel] = ("dir", st.st_mode, None, None, None)
            else:
                result[rel] = ("other", st.st_mode, None, None, st.st_mtime_ns)
    return result


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


class AnswerServer:
    """A TCP server on the host's loopback that hands out an answer and counts connections.

    A sandboxed kernel must not be able to reach it.
    """

    def __init__(self, answer: bytes):
        self.answer = answer
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("0.0.0.0", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.5)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                conn.sendall(self.answer)
            finally:
                conn.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def host_ip() -> str | None:
    """A non-loopback address of this machine (the sandbox must not reach it either), if any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
            return None if ip.startswith("127.") else ip
    except OSError:
        return None
