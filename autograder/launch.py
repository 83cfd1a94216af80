"""Host side: start the kernel driver (autograder/sandbox/driver.py) in a bubblewrap sandbox, or
directly for trusted notebooks, and talk to it in JSON lines.

The sandbox: no network (--unshare-net), new PID/IPC/UTS namespaces, read-only /usr, /etc, the
Python installation and the venv; bpkit/ read-only at /opt/bpkit/bpkit and autograder/sandbox/ at
/opt/grader/bpkit_sandbox (nothing else of the repo: no solutions, no gradebook, no other
submission); a private tmpfs /tmp, the only writable place. It runs as an unprivileged uid of its
own, locked for the whole machine (two grader runs never share one), under prlimit (CPU, open
files, file size, no core dumps), in a memory and a pids cgroup of its own when the machine has
cgroups: one memory limit for every process of the sandbox, the driver included.
"""

import fcntl
import itertools
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .config import HERE, REPO

SANDBOX_UIDS = range(61000, 62000)
UID_LOCKS = Path("/tmp/bpkit-sandbox-uids")
MAX_FRAME = 200 << 20
_counter = itertools.count()


class SandboxGone(Exception):
    """The driver stopped answering (killed, crashed, or out of memory)."""


def bwrap_path():
    return shutil.which("bwrap")


def prepare_mpl_cache(folder):
    """Build a matplotlib font cache once (copied into every run: saves about 1 s each)."""
    folder = Path(folder)
    if not any(folder.glob("fontlist*.json")):
        folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MPLCONFIGDIR=str(folder))
        subprocess.run(
            [sys.executable, "-c", "import matplotlib.font_manager"],
            env=env,
            timeout=120,
            capture_output=True,
        )
    return folder


# ------------------------------------------------------------------------------------------------
# uids and cgroups
# ------------------------------------------------------------------------------------------------


class UidLease:
    """An unprivileged uid held (flock) for as long as one sandbox lives."""

    def __init__(self):
        UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        start = random.randrange(len(SANDBOX_UIDS))
        for k in range(len(SANDBOX_UIDS)):
            uid = SANDBOX_UIDS[(start + k) % len(SANDBOX_UIDS)]
            fd = os.open(UID_LOCKS / ("%d.lock" % uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self.fd = uid, fd
            return
        raise RuntimeError("all %d sandbox uids are in use" % len(SANDBOX_UIDS))

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _cgroup_dirs():
    """{'memory': dir, 'pids': dir} where child cgroups can be made, or {} (no cgroups here)."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    if (root / "cgroup.controllers").exists():  # cgroup v2
        rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
        if rel is None:
            return {}
        base = root / rel.lstrip("/")
        ok = os.access(base, os.W_OK) and "memory" in (base / "cgroup.controllers").read_text()
        return {"v2": base} if ok else {}
    dirs = {}
    for ln in lines:
        _, controllers, rel = ln.split(":", 2)
        for name in ("memory", "pids"):
            if name in controllers.split(","):
                d = root / name / rel.lstrip("/")
                if os.access(d, os.W_OK):
                    dirs[name] = d
    return dirs if "memory" in dirs else {}


def cgroups_available():
    return bool(_cgroup_dirs())


class Cgroup:
    """A memory (and pids) cgroup for one sandbox; every process in it shares the limits."""

    def __init__(self, memory_mb, pids):
        self.dirs, self.procs = [], []
        bases = _cgroup_dirs()
        if not bases:
            return
        _sweep_stale(bases)
        # pid, counter and a random tag: a pid can be reused by a later grader after a kill -9
        name = "bpkit-%d-%d-%06x" % (os.getpid(), next(_counter), random.getrandbits(24))
        limit = str(int(memory_mb) << 20)
        if "v2" in bases:
            d = bases["v2"] / name
            d.mkdir()
            (d / "memory.max").write_text(limit)
            (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
            if (d / "pids.max").exists():
                (d / "pids.max").write_text(str(pids))
            self.dirs, self.memory = [d], d
            return
        mem = bases["memory"] / name
        mem.mkdir()
        (mem / "memory.limit_in_bytes").write_text(limit)
        if (mem / "memory.memsw.limit_in_bytes").exists():
            try:
                (mem / "memory.memsw.limit_in_bytes").write_text(limit)
            except OSError:
                pass
        self.dirs, self.memory = [mem], mem
        if "pids" in bases:
            p = bases["pids"] / name
            p.mkdir()
            (p / "pids.max").write_text(str(pids))
            self.dirs.append(p)

    def wrap(self, cmd):
        """cmd run by a shell that first moves itself into the cgroups (so does every child)."""
        if not self.dirs:
            return cmd
        script = " && ".join('echo $$ > "$%d"' % (k + 1) for k in range(len(self.dirs)))
        script += ' && shift %d && exec "$@"' % len(self.dirs)
        return ["/bin/sh", "-c", script, "sh", *[str(d / "cgroup.procs") for d in self.dirs], *cmd]

    def oom_killed(self):
        """True when the kernel's OOM killer acted inside this cgroup."""
        if not self.dirs:
            return False
        try:
            for name in ("memory.oom_control", "memory.events"):
                path = self.memory / name
                if path.exists():
                    for line in path.read_text().splitlines():
                        key, _, val = line.partition(" ")
                        if key == "oom_kill" and int(val) > 0:
                            return True
        except (OSError, ValueError):
            pass
        return False

    def destroy(self):
        for d in self.dirs:
            _remove_cgroup(d)
        self.dirs = []


def _remove_cgroup(d):
    """Kill what is left in cgroup d, then remove it (retrying while the processes exit)."""
    for _ in range(50):
        try:
            pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            d.rmdir()
            return
        except OSError:
            time.sleep(0.05)


_swept = set()


def _sweep_stale(bases):
    """Once per process: remove the cgroups of graders that died without cleaning up (kill -9),
    recognised by the grader pid in their name no longer running."""
    for base in set(bases.values()) - _swept:
        _swept.add(base)
        for d in base.glob("bpkit-*"):
            try:
                pid = int(d.name.split("-")[1])
                os.kill(pid, 0)
                continue  # that grader is still running
            except ProcessLookupError:
                _remove_cgroup(d)
            except (ValueError, IndexError, PermissionError):
                continue


# ------------------------------------------------------------------------------------------------
# the driver process
# ------------------------------------------------------------------------------------------------


def _env(home, pythonpath, tmpdir):
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": home,
        "MPLCONFIGDIR": home + "/.config/matplotlib",
        "IPYTHONDIR": home + "/.ipython",
        "JUPYTER_RUNTIME_DIR": home + "/runtime",
        "JUPYTER_DATA_DIR": home + "/.local/share/jupyter",
        "JUPYTER_CONFIG_DIR": home + "/.jupyter",
        "PYTHONPATH": pythonpath,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": tmpdir,
    }


def _dirs(path, seen):
    """bwrap args creating the ancestors of a mount point with mode 0755."""
    args = []
    parts = Path(path).parts
    for k in range(2, len(parts)):
        d = str(Path(*parts[:k]))
        if d not in seen:
            seen.add(d)
            args += ["--perms", "0755", "--dir", d]
    return args


def bwrap_command(settings, uid, mpl, data):
    """The command line running the driver inside the sandbox."""
    args = [
        bwrap_path(),
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("lib", "lib64", "bin", "sbin", "lib32"):
        p = Path("/" + name)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), "/" + name]
        elif p.is_dir():
            args += ["--ro-bind", str(p), "/" + name]
    args += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(settings.tmp_mb << 20), "--tmpfs", "/tmp"]
    seen = {"/tmp"}
    mounts = [
        (sys.base_prefix, sys.base_prefix),
        (sys.prefix, sys.prefix),
        (str(REPO / "bpkit"), "/opt/bpkit/bpkit"),
        (str(HERE / "sandbox"), "/opt/grader/bpkit_sandbox"),
    ]
    if mpl:
        mounts.append((str(mpl), "/opt/mplcache"))
    if data:
        mounts.append((str(data), "/opt/data"))
    for src, dst in mounts:
        if any(dst == m or dst.startswith(m.rstrip("/") + "/") for m in ("/usr", "/etc")):
            continue
        args += _dirs(dst, seen) + ["--ro-bind", src, dst]
    args += ["--clearenv"]
    for key, val in _env("/tmp/home", "/opt/bpkit:/opt/grader", "/tmp").items():
        args += ["--setenv", key, val]
    args += ["--chdir", "/tmp", "--"]
    cpu = int(settings.timeout) + 10
    args += [
        "setpriv",
        "--reuid=%d" % uid,
        "--regid=%d" % uid,
        "--clear-groups",
        "--",
        "prlimit",
        "--cpu=%d:%d" % (cpu, cpu + 5),
        "--nproc=%d" % settings.processes,
        "--fsize=%d" % (settings.file_mb << 20),
        "--nofile=512",
        "--core=0",
        "--",
        sys.executable,
        "-m",
        "bpkit_sandbox.driver",
    ]
    return args


class Driver:
    """One running driver (sandboxed or not): send commands, read replies with deadlines."""

    def __init__(self, settings, *, sandbox=True, mpl=None, data=None, cwd=None):
        self.settings, self.sandbox = settings, sandbox
        self.lease = self.cgroup = self.scratch = None
        job = {"cell_timeout": settings.cell_timeout, "limits": settings.output_limits()}
        if sandbox:
            self.lease = UidLease()
            self.cgroup = Cgroup(settings.memory, settings.processes)
            home = "/tmp/home"
            job["workdir"] = "/tmp/work"
            job["makedirs"] = [home, home + "/.config", home + "/runtime", "/tmp/work"]
            job["copy"] = [["/opt/mplcache", home + "/.config/matplotlib"]] if mpl else []
            if data:
                job["copy"].append(["/opt/data", "/tmp/work"])
            # the cgroup holds the sum; the kernel also gets an address-space backstop (twice the
            # limit: a kernel's address space is about 1 GB before it allocates anything), so one
            # huge allocation raises MemoryError in the student's cell instead of an OOM kill
            job["kernel_memory_mb"] = settings.memory * (2 if self.cgroup.dirs else 1)
            cmd = self.cgroup.wrap(bwrap_command(settings, self.lease.uid, mpl, data))
            env = None
        else:
            import tempfile

            self.scratch = tempfile.mkdtemp(prefix="bpkit-run-")
            home = os.path.join(self.scratch, "home")
            job["workdir"] = str(cwd) if cwd else os.path.join(self.scratch, "work")
            job["makedirs"] = [home, home + "/.config", home + "/runtime", job["workdir"]]
            job["copy"] = [[str(mpl), home + "/.config/matplotlib"]] if mpl else []
            if data:
                job["copy"].append([str(data), job["workdir"]])
            job["kernel_memory_mb"] = settings.memory
            path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
            env = _env(home, path, self.scratch)
            cmd = [sys.executable, "-m", "autograder.sandbox.driver"]
        self.job = job
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def start(self, cells, timeout=90):
        """Send the job (cells to run: [{index, source}]); wait for the kernel. Returns seconds."""
        self.send(dict(self.job, cells=cells))
        reply = self.recv(timeout)
        if reply.get("event") != "ready":
            raise SandboxGone("driver did not start")
        return reply.get("seconds", 0)

    def send(self, obj):
        try:
            self.proc.stdin.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SandboxGone("driver closed its input") from None

    def recv(self, timeout):
        """The next JSON line from the driver, or SandboxGone / TimeoutError."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("driver did not answer within %.0f s" % timeout)
            if not self._sel.select(left):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise SandboxGone("driver stopped")
            self._buf += chunk
            if len(self._buf) > MAX_FRAME:
                raise SandboxGone("driver reply over %d MB" % (MAX_FRAME >> 20))
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            raise SandboxGone("driver reply is not JSON") from None
        if not isinstance(obj, dict):
            raise SandboxGone("driver reply is not an object")
        return obj

    def request(self, obj, timeout):
        self.send(obj)
        return self.recv(timeout)

    def oom_killed(self):
        return bool(self.cgroup and self.cgroup.oom_killed())

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._sel.close()
        if self.cgroup:
            self.cgroup.destroy()
        if self.lease:
            self.lease.release()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# trusted notebooks in a local kernel (check, selfcheck): every cell, tests included
# ------------------------------------------------------------------------------------------------

SNAPSHOT_SAVE = r"""
def __bpkit_snapshot():
    import copy, random, sys, types
    ip = get_ipython()
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    plain = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)

    def copy_of(v):
        if isinstance(v, plain):
            return v
        try:
            return copy.deepcopy(v)
        except Exception:
            return v
    frozen = {k: copy_of(v) for k, v in list(ns.items()) if k not in hidden and not k.startswith("_")}
    state = {"random": random.getstate()}
    try:
        import numpy
        state["numpy"] = numpy.random.get_state()
    except Exception:
        pass

    def restore():
        for k in [k for k in ns if k not in hidden and not k.startswith("_") and k not in frozen]:
            del ns[k]
        for k, v in frozen.items():
            ns[k] = copy_of(v)
        random.setstate(state["random"])
        if "numpy" in state:
            numpy.random.set_state(state["numpy"])
    sys.modules["_bpkit_snapshot"] = types.SimpleNamespace(restore=restore)
__bpkit_snapshot()
del __bpkit_snapshot
"""

SNAPSHOT_RESTORE = "import _bpkit_snapshot as __bpkit_s; __bpkit_s.restore(); del __bpkit_s"


def run_trusted(nb, settings, *, cwd=None, mpl=None, variants=None):
    """Run every code cell of a trusted notebook (no sandbox) and report per cell.

    variants: {str(answer cell index): [{"tag", "source", "upto"}]}: before that cell runs, the
    kernel state is snapshotted; each variant runs its source in place of the cell and then the
    cells after it up to index `upto`, from the snapshot; then the notebook goes on as written.
    Returns {"cells": {index: info}, "outputs": {index: [...]}, "variants": {tag: {index: info}},
    "kernel_died", "stuck", "elapsed", "main_elapsed", "error"} (info: status ok/error/timeout/
    not_run, ename, evalue, stderr).
    """
    variants = variants or {}
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    res = {
        "cells": {},
        "outputs": {},
        "variants": {},
        "kernel_died": None,
        "stuck": None,
        "error": None,
    }
    t0 = time.monotonic()
    spent = 0.0
    driver = Driver(settings, sandbox=False, mpl=mpl, cwd=cwd)
    try:
        driver.start([{"index": i, "source": c.source} for i, c in code])
        wait = settings.cell_timeout + 30

        def run_until(k):
            reply = driver.request({"cmd": "run_until", "index": k}, settings.timeout + 60)
            return reply.get("alive", False)

        def exec_(source):
            reply = driver.request({"cmd": "exec", "source": source}, wait)
            return reply.get("info", {}), reply.get("alive", False)

        for idx in sorted(variants, key=int):
            orig = int(idx)
            if not run_until(orig):
                break
            t = time.monotonic()
            exec_(SNAPSHOT_SAVE)
            for v in variants[idx]:
                exec_(SNAPSHOT_RESTORE)
                info, alive = exec_(v["source"])
                vres = {str(orig): info}
                for j, c in code:
                    if orig < j <= v["upto"] and alive:
                        vres[str(j)], alive = exec_(c.source)
                res["variants"][v["tag"]] = vres
                if not alive:
                    break
            exec_(SNAPSHOT_RESTORE)
            spent += time.monotonic() - t
        done = driver.request({"cmd": "finish"}, settings.timeout + 60)
        res["cells"], res["outputs"] = done.get("cells", {}), done.get("outputs", {})
        res["kernel_died"], res["stuck"] = done.get("kernel_died"), done.get("stuck")
    except (SandboxGone, TimeoutError) as exc:
        res["error"] = str(exc)
    finally:
        driver.close()
    for i, _ in code:
        res["cells"].setdefault(str(i), {"status": "not_run"})
    res["elapsed"] = time.monotonic() - t0
    res["main_elapsed"] = res["elapsed"] - spent
    return res
