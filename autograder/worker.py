"""Trusted worker processes: each grades one notebook (sandbox + evaluator) and returns data.

A worker is forked from a warm parent that has already imported NumPy, SymPy, matplotlib and
bpkit and never runs any notebook itself (`python -m autograder.worker SOCKET`): a fork costs
milliseconds where a fresh interpreter costs a second or more. The grader connects to the
parent's Unix socket (in a private folder) once per notebook; the parent forks a child for the
connection; the child starts the sandbox, runs the evaluator, sends the outcome and exits.
Every child is a fresh copy of the parent, so nothing one evaluation leaves behind reaches the
next, and the child holds no other submission's data.

Frames on the socket: 8-byte big-endian length, then JSON.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .config import REPO

MAX_RESULT = 256 << 20


def send_frame(sock, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">Q", len(data)) + data)


def recv_frame(sock, limit=MAX_RESULT):
    head = _recv_exact(sock, 8)
    (n,) = struct.unpack(">Q", head)
    if n > limit:
        raise ValueError("frame of %d bytes over the limit" % n)
    return json.loads(_recv_exact(sock, n))


def _recv_exact(sock, n):
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------------
# one evaluation (runs in the forked child, or in-process for trusted local runs)
# ------------------------------------------------------------------------------------------------


def evaluate(job):
    """Run one prepared notebook: U in the driver (sandboxed or not), T here. Returns a dict:

    {"ready": bool, "error": grader fault text or None, "verdicts": {grade_id: {passed, ename,
     evalue, outputs}}, "cells": {index: info}, "outputs": {index: [...]}, "kernel_died",
     "stuck", "deadline", "memory", "protocol", "seconds": {...}}
    """
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines

    from .evaluator import Evaluator
    from .launch import Driver
    from .settings import GraderSettings

    settings = GraderSettings(**job["settings"])
    source = rejoin_lines(nbformat.from_dict(job["source"]))  # sources as one string per cell
    prepared = rejoin_lines(nbformat.from_dict(job["prepared"]))
    t0 = time.monotonic()
    out = {
        "ready": False,
        "error": None,
        "verdicts": {},
        "cells": {},
        "outputs": {},
        "kernel_died": None,
        "stuck": None,
        "deadline": False,
        "memory": False,
        "protocol": None,
        "seconds": {},
    }
    cells = [
        {"index": i, "source": c.source}
        for i, c in enumerate(prepared.cells)
        if c.cell_type == "code" and not _is_test(c)
    ]
    try:
        driver = Driver(
            settings,
            sandbox=job["sandbox"],
            mpl=job.get("mpl"),
            data=job.get("data"),
            cwd=job.get("cwd"),
        )
    except Exception as exc:
        out["error"] = "sandbox could not start: %s: %s" % (type(exc).__name__, exc)
        return out
    timer = threading.Timer(settings.timeout, _expire, (driver, out))
    timer.daemon = True
    try:
        try:
            out["seconds"]["kernel_start"] = driver.start(cells)
            out["ready"] = True
        except Exception as exc:
            out["error"] = "sandbox could not start: %s" % exc
            return out
        timer.start()
        read_sympy = _sympy_reader()
        ev = Evaluator(source, prepared, driver, settings, read_sympy)
        ev.run(job.get("last_test"))
        out["verdicts"] = {
            gid: {"passed": v.passed, "ename": v.ename, "evalue": v.evalue, "outputs": v.outputs}
            for gid, v in ev.verdicts.items()
        }
        if job.get("last_test"):
            return out
        try:
            done = driver.request({"cmd": "finish"}, settings.timeout + 30)
            if done.get("event") != "done":
                raise ValueError("driver answered out of turn")
            out["cells"] = done.get("cells") if isinstance(done.get("cells"), dict) else {}
            out["outputs"] = done.get("outputs") if isinstance(done.get("outputs"), dict) else {}
            for key in ("kernel_died", "stuck"):
                if isinstance(done.get(key), int):
                    out[key] = done[key]
        except Exception as exc:
            if not out["deadline"]:
                out["protocol"] = "the sandbox stopped before the end (%s)" % exc
        quiet = out["kernel_died"] is None and out["stuck"] is None and not out["deadline"]
        if not ev.link.alive and quiet:
            out["kernel_died"] = -1
    finally:
        timer.cancel()
        out["memory"] = driver.oom_killed()
        driver.close()
        out["seconds"]["total"] = round(time.monotonic() - t0, 3)
    return out


def _expire(driver, out):
    out["deadline"] = True
    driver.close()


def _is_test(cell):
    md = cell.get("metadata", {}).get("nbgrader", {})
    return isinstance(md, dict) and bool(md.get("grade")) and bool(md.get("grade_id"))


def _sympy_reader():
    """SymPy text from the kernel -> expression: read without eval (read_srepr builds it
    unevaluated, with caps on size, depth and exponents), then rebuilt from the leaves up so it
    compares with == like the expression the student built."""
    from bpkit.course.answers import read_srepr

    def evaluated(e):
        args = getattr(e, "args", ())
        if not args or not callable(getattr(e, "func", None)):
            return e
        try:
            return e.func(*[evaluated(a) for a in args])
        except Exception:  # noqa: BLE001 (a node SymPy will not rebuild stays as it was read)
            return e

    return lambda text: evaluated(read_srepr(text))


# ------------------------------------------------------------------------------------------------
# the warm parent (fork server) and its client
# ------------------------------------------------------------------------------------------------


def _warm_up():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import nbformat  # noqa: F401
    import numpy  # noqa: F401
    import sympy  # noqa: F401

    import bpkit  # noqa: F401
    from bpkit.course import checks, plotting  # noqa: F401

    from . import evaluator, launch  # noqa: F401


def serve(path):
    """Accept connections on the Unix socket `path`; fork one child per connection."""
    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # our stdin is a pipe from the process that started us: end of file means it is gone, and
    # so are we (no orphaned fork server; a thread-bound PR_SET_PDEATHSIG would fire when the
    # starting thread ends, which in a Dask worker is any time)
    import selectors
    import stat as stat_

    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    if stat_.S_ISFIFO(os.fstat(0).st_mode):  # started with a pipe to watch (see WorkerPool)
        sel.register(sys.stdin.buffer, selectors.EVENT_READ)
    while True:
        ready = [key.fileobj for key, _ in sel.select()]
        if sys.stdin.buffer in ready and not os.read(sys.stdin.fileno(), 1):
            os._exit(0)
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setpgid(0, 0)
            try:
                send_frame(conn, {"pid": os.getpid()})
                job = recv_frame(conn)
                send_frame(conn, evaluate(job))
            except Exception as exc:
                try:
                    send_frame(conn, {"error": "worker failed: %s: %s" % (type(exc).__name__, exc)})
                except OSError:
                    pass
            finally:
                os._exit(0)
        conn.close()


class WorkerPool:
    """The grader's handle on the warm parent; `evaluate(job, timeout)` is thread-safe."""

    def __init__(self, env=None, entry="autograder.worker", extra=()):
        """Start the warm parent: `python -m ENTRY SOCKET EXTRA...` (autograder.distributed
        starts its own, which also watches its Dask worker)."""
        self.dir = tempfile.mkdtemp(prefix="bpkit-workers-")
        os.chmod(self.dir, 0o700)
        self.path = os.path.join(self.dir, "sock")
        env = dict(env or os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        env["MPLCONFIGDIR"] = os.path.join(self.dir, "mpl")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", entry, self.path, *map(str, extra)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,  # closed when this process ends: the server then exits
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError("the grading worker did not start")

    def evaluate(self, job, timeout):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = None
        try:
            sock.connect(self.path)
            sock.settimeout(timeout)
            pid = recv_frame(sock)["pid"]
            send_frame(sock, job)
            return recv_frame(sock)
        except TimeoutError:
            return {"error": None, "killed": True}
        finally:
            sock.close()
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def close(self):
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for p in Path(self.dir).glob("*"):
            if p.is_file() or p.is_socket():
                p.unlink()
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


if __name__ == "__main__":
    serve(sys.argv[1])
