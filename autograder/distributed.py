"""Grading on a Dask cluster: `grade SUBMISSIONS --out OUTDIR --scheduler tcp://HOST:PORT`.

`DaskPool` has the interface of `worker.WorkerPool` (`evaluate(job, timeout) -> dict`): each
notebook becomes one Dask task that runs `worker.evaluate(job)` on a Dask worker, in a process
forked for that job from a warm parent that the Dask worker starts on first use (one per Dask
worker process: worker.py's `WorkerPool`, which here also exits when its Dask worker dies, and
takes its jobs and their sandboxes with it). The sandbox and the evaluator never share a
process with another job, nor with the Dask worker's interpreter. Results come back to the one
client process, which alone writes the gradebook, the CSVs and the state files, so resume and
exactly-once hold as in a local run.

Failures:
- a Dask worker that dies (killed, OOM, preempted) takes its running tasks with it; the scheduler
  runs them again on another worker (`distributed.scheduler.allowed-failures`, default 3; a task
  that kills more workers than that fails with KilledWorker and its row gets status `error`).
  The client receives one result per task, and the grader commits one result per submission.
- a task that raises is not retried: the exception reaches the grader, which records the row as
  a grader error, as it does for a local worker.
- losing the scheduler cancels every task in flight (never an `error` row): the Dask client
  reconnects for `distributed.comm.timeouts.connect` (30 s by default) and the jobs are submitted
  again once it is back; else the run stops with `ClusterError` (exit 1) and records nothing
  more; a rerun resumes.
- a worker whose grading code or packages differ from the client's, or that cannot start a
  sandbox, is refused: before the run (the workers connected then) and on its first task (workers
  that joined later); the run stops rather than record error rows a rerun would not regrade.

The matplotlib font cache and the assignment's data files (folders named in the job) travel as
tar archives held by Dask (a task whose result is the archive, so a lost copy is recomputed, not
lost); each worker unpacks one copy per content hash in its local directory.

See autograder/DISTRIBUTED.md for starting the scheduler and the workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .config import REPO, UserError
from .worker import WorkerPool

# packages whose version can change a grade (the kernel's and the evaluator's)
PACKAGES = ("numpy", "sympy", "matplotlib", "nbformat", "ipykernel", "jupyter_client")
# the code that runs on a worker (scoring, CSVs and feedback stay on the client)
WORKER_CODE = (
    "autograder/config.py",
    "autograder/distributed.py",
    "autograder/evaluator.py",
    "autograder/launch.py",
    "autograder/nbtools.py",
    "autograder/settings.py",
    "autograder/worker.py",
    "autograder/sandbox/*.py",
    "bpkit/**/*.py",
)


class ClusterError(BaseException):
    """The Dask cluster cannot grade (scheduler gone, a worker unlike the client): the run stops
    without recording anything for the submissions in flight. A BaseException on purpose: the
    grader records an Exception in one submission as that submission's `error` row."""


class WrongWorker(Exception):
    """Raised on a Dask worker that must not grade (different code, packages, no bwrap)."""


# ------------------------------------------------------------------------------------------------
# what a worker must have in common with the client
# ------------------------------------------------------------------------------------------------

_FINGERPRINT = None


def fingerprint():
    """SHA-256 of the code that grades on a worker (WORKER_CODE), the Python version and the
    versions of the packages that grade; equal on the client and every worker, or grades could
    differ."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        h = hashlib.sha256(sys.version.split()[0].encode())
        for name in PACKAGES:
            try:
                h.update(("%s=%s" % (name, version(name))).encode())
            except PackageNotFoundError:
                h.update(("%s=-" % name).encode())
        for pattern in WORKER_CODE:
            for path in sorted(REPO.glob(pattern)):
                h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


def sandbox_probe():
    """None when bubblewrap can make this worker's namespaces, else why not (a container
    without the rights bwrap needs fails here, not in every job)."""
    from . import launch

    bwrap = launch.bwrap_path()
    if not bwrap:
        return "no bubblewrap (bwrap)"
    cmd = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    cmd += ["--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "bwrap failed (%s)" % exc
    if proc.returncode:
        why = proc.stderr.strip()[:200] or "exit %d" % proc.returncode
        return "bwrap cannot make a sandbox here (%s)" % why
    return None


def worker_report():
    """What the client checks on every Dask worker before a run (runs on the worker)."""
    return {
        "fingerprint": fingerprint(),
        "sandbox": sandbox_probe(),
        "python": sys.version.split()[0],
        "repo": str(REPO),
        "host": os.uname().nodename,
    }


# ------------------------------------------------------------------------------------------------
# files shipped to the workers (font cache, data files)
# ------------------------------------------------------------------------------------------------


def pack(folder):
    """A reproducible tar archive of `folder` (regular files and folders, modes 0644/0755)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _archive(data):
    """The task whose result is the archive: recomputed from its arguments if a worker is lost."""
    return data


_UNPACK_LOCK = threading.Lock()


def unpack(data, base):
    """The archive's files in `base/<sha256>` (unpacked once per worker); returns that folder."""
    digest = hashlib.sha256(data).hexdigest()[:32]
    dest = Path(base) / "bpkit-files" / digest
    with _UNPACK_LOCK:
        if not dest.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # Python < 3.11.4; the archive comes from the grading client
                    tar.extractall(tmp)
            os.chmod(tmp, 0o755)  # read by the sandbox's unprivileged uid
            os.replace(tmp, dest)
    return str(dest)


# ------------------------------------------------------------------------------------------------
# on the Dask worker
# ------------------------------------------------------------------------------------------------


class _WatchedPool(WorkerPool):
    """worker.WorkerPool whose warm parent (and every job it forked) goes when the Dask worker
    process goes, however it goes (a killed Dask worker must not leave sandboxes behind)."""

    def __init__(self):
        super().__init__(entry="autograder.distributed", extra=[os.getpid()])


def _serve_watched(path, owner):
    """worker.serve for a Dask worker: exit when `owner` (the Dask worker) is gone; each forked
    job gets SIGKILL when this parent exits (PR_SET_PDEATHSIG), and its sandbox follows it
    (bwrap --die-with-parent)."""
    import ctypes

    from . import worker

    libc = ctypes.CDLL(None, use_errno=True)

    def watch():
        while os.getppid() == owner:
            time.sleep(0.5)
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # WorkerPool.close's work
        os._exit(0)

    def die_with_parent():
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1

    if os.getppid() != owner:
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    os.register_at_fork(after_in_child=die_with_parent)
    worker.serve(path)


_POOL = None
_POOL_LOCK = threading.Lock()


def _local_pool(renew=False):
    """This Dask worker's warm fork server, started on first use (and again if it died)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and (renew or _POOL.proc.poll() is not None):
            _POOL.close()
            _POOL = None
        if _POOL is None:
            import atexit

            _POOL = _WatchedPool()
            atexit.register(_POOL.close)
        return _POOL


def prestart():
    """Start this worker's fork server in the background (runs on the worker, from the client's
    check): its imports overlap the client's start-up instead of delaying the first job."""

    def start():
        try:
            _local_pool()
        except Exception:
            pass  # the first task tries again and reports why

    threading.Thread(target=start, daemon=True).start()


def grade_task(job_json, mpl, data, timeout, client_fingerprint):
    """One notebook, on a Dask worker: worker.evaluate(job) in a forked child; returns its dict
    with seconds["worker"] (time in this task) and "dask_worker" (this worker's address)."""
    t0 = time.monotonic()
    from distributed import get_worker

    from . import launch

    me = get_worker()
    if client_fingerprint != fingerprint():
        raise WrongWorker(
            "Dask worker %s runs other grader code or package versions than the client "
            "(install the same checkout and venv there)" % me.address
        )
    job = json.loads(job_json)
    if job.get("sandbox") and not launch.bwrap_path():
        raise WrongWorker("Dask worker %s has no bubblewrap (bwrap)" % me.address)
    job["mpl"] = unpack(mpl, me.local_directory) if mpl is not None else None
    job["data"] = unpack(data, me.local_directory) if data is not None else None
    try:
        pool = _local_pool()
    except Exception as exc:
        raise WrongWorker(
            "Dask worker %s could not start its grading worker (%s)" % (me.address, exc)
        ) from None
    try:
        result = pool.evaluate(job, timeout)
    except (ConnectionError, FileNotFoundError):  # the warm parent died: start another, once
        result = _local_pool(renew=True).evaluate(job, timeout)
    if job.get("sandbox") and result.get("error") and not result.get("ready"):
        why = sandbox_probe()  # this worker cannot sandbox at all: not this submission's fault
        if why:
            raise WrongWorker("Dask worker %s: %s" % (me.address, why))
    seconds = result.get("seconds")
    if not isinstance(seconds, dict):
        seconds = result["seconds"] = {}
    seconds["worker"] = round(time.monotonic() - t0, 3)
    result["dask_worker"] = me.address
    return result


# ------------------------------------------------------------------------------------------------
# on the client (the grading process)
# ------------------------------------------------------------------------------------------------


class DaskPool:
    """The grader's handle on a Dask cluster; `evaluate(job, timeout)` is thread-safe."""

    def __init__(self, address, log=sys.stderr, sandbox=True):
        try:
            import dask
            from dask.utils import parse_timedelta
            from distributed import Client
        except ImportError:
            raise UserError(
                "--scheduler needs the 'distributed' package (pip install distributed)"
            ) from None
        self.address, self.log, self.sandbox = address, log, sandbox
        # how long to wait for the scheduler, at the start and after losing it (Dask's setting
        # distributed.comm.timeouts.connect, e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=60s)
        self.connect_timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
        try:
            self.client = Client(address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(
                "cannot reach the Dask scheduler at %s (%s)" % (address, str(exc).split("\n")[0])
            ) from None
        self.fingerprint = fingerprint()
        self._files, self._lock, self._pending = {}, threading.Lock(), set()
        self.broken = None
        try:
            self.check_workers()
            self.client.run(prestart)
        except BaseException:
            self.client.close()
            raise
        self.slots = sum(self.client.nthreads().values())
        if not self.slots:
            log.write(
                "autograder: no Dask worker is connected to %s yet; the submissions wait for "
                "one\n" % address
            )

    def check_workers(self):
        """Refuse to start when a connected worker differs from the client (UserError)."""
        bad = []
        for addr, info in sorted(self.client.run(worker_report).items()):
            if info["fingerprint"] != self.fingerprint:
                bad.append("%s (%s: other grader code or package versions)" % (addr, info["host"]))
            elif self.sandbox and info["sandbox"]:
                bad.append("%s (%s: %s)" % (addr, info["host"], info["sandbox"]))
        if bad:
            raise UserError(
                "Dask workers unlike this grader (same checkout, venv and bwrap needed, see "
                "autograder/DISTRIBUTED.md): %s" % "; ".join(bad)
            )

    def _file_future(self, folder):
        """The Dask future of a folder's archive (one per folder and run)."""
        with self._lock:
            fut = self._files.get(folder)
            if fut is None or fut.cancelled():
                data = pack(folder)
                key = "bpkit-files-" + hashlib.sha256(data).hexdigest()[:32]
                fut = self._files[folder] = self.client.submit(_archive, data, key=key)
            return fut

    def evaluate(self, job, timeout):
        t0 = time.monotonic()
        job = dict(job)
        folders = {k: job.pop(k, None) for k in ("mpl", "data")}
        payload = json.dumps(job, separators=(",", ":"))
        for attempt in range(4):
            if self.broken:
                raise ClusterError(self.broken)
            try:
                files = [self._file_future(folders[k]) if folders[k] else None for k in folders]
                fut = self.client.submit(
                    grade_task,
                    payload,
                    *files,
                    timeout,
                    self.fingerprint,
                    key="bpkit-grade-" + uuid.uuid4().hex,
                    pure=False,
                )
            except Exception:  # the client is closed or reconnecting
                self._wait_or_abort(attempt)
                continue
            with self._lock:
                self._pending.add(fut)
            try:
                result = fut.result()
            except WrongWorker as exc:
                self.abort("%s; rerun the same command to resume" % exc)
                raise ClusterError(self.broken) from None
            except Exception:
                # the task's own exception (KilledWorker included): the submission's error row;
                # anything else (cancelled: the scheduler connection was lost, the client closed)
                # is the cluster's, never a row
                if fut.status == "error":
                    raise
                self._wait_or_abort(attempt)
                continue
            finally:
                with self._lock:
                    self._pending.discard(fut)
                del fut  # the scheduler forgets the task and its result
            seconds = result.get("seconds")
            if isinstance(seconds, dict) and "worker" in seconds:
                seconds["dask"] = round(time.monotonic() - t0 - seconds["worker"], 3)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait_or_abort(self, attempt):
        """Return once the client is connected again (the caller submits again), else stop."""
        if not self.broken and attempt < 3 and self._reconnected():
            return
        self.abort("lost the Dask scheduler at %s; rerun the same command to resume" % self.address)
        raise ClusterError(self.broken)

    def _reconnected(self, wait=None):
        """True once the client is connected again (Dask reconnects on its own for its timeout)."""
        deadline = time.monotonic() + (wait if wait is not None else self.connect_timeout + 5)
        while time.monotonic() < deadline:
            if self.client.status == "running":
                with self._lock:
                    self._files.clear()  # the new scheduler knows none of them
                return True
            if self.client.status in ("closing", "closed"):
                return False
            time.sleep(0.2)
        return False

    def abort(self, reason):
        """Stop: every waiting evaluate raises ClusterError (nothing more gets committed)."""
        with self._lock:
            if self.broken is None:
                self.broken = reason
            pending = list(self._pending)
        for fut in pending:
            try:
                fut.cancel()
            except Exception:
                pass

    def close(self):
        with self._lock:
            self._files.clear()
        try:
            self.client.close(timeout=10)
        except Exception:
            pass


if __name__ == "__main__":
    _serve_watched(sys.argv[1], int(sys.argv[2]))
