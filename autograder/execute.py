"""Run runner.py on one notebook, in a bubblewrap sandbox or (trusted input) directly.

Sandbox: no network, new PID/IPC/UTS namespaces, read-only /usr, /etc, the Python installation and
the venv, the repo's bpkit/ package at /opt/bpkit/bpkit, a private 1777 tmpfs /tmp (the only
writable place), uid/gid 65534, rlimits (CPU, address space, processes, file size, open files).
The whole process group is killed after `wall` seconds.
"""

import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .config import HERE, REPO

LIMITS = {"text": 100_000, "image": 1_000_000, "cell": 2_000_000, "notebook": 10_000_000}
NOBODY = 65534
# Each sandbox runs as its own unprivileged uid, so RLIMIT_NPROC (counted per uid, machine-wide)
# is one submission's budget: a fork bomb cannot starve the submissions graded beside it.
SANDBOX_UIDS = range(61000, 62000)
_next_uid = itertools.count()


def bwrap_path():
    return shutil.which("bwrap")


def prepare_mpl_cache(folder):
    """Build a matplotlib font cache once (copied into every run: saves ~1 s per submission)."""
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


def _env(home, pythonpath):
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": home,
        "MPLCONFIGDIR": home + "/.config/matplotlib",
        "MPLBACKEND": "agg",
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
        "TMPDIR": "/tmp" if pythonpath == "/opt/bpkit" else str(Path(home).parent),
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


def bwrap_command(mpl, data, *, cpu, memory_mb, nproc=256, fsize_mb=64, tmp_mb=512):
    """The command line running runner.py inside the sandbox."""
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
    args += [
        "--ro-bind",
        "/etc",
        "/etc",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(tmp_mb << 20),
        "--tmpfs",
        "/tmp",
    ]
    seen = {"/tmp"}
    mounts = [
        (sys.base_prefix, sys.base_prefix),
        (sys.prefix, sys.prefix),
        (str(REPO / "bpkit"), "/opt/bpkit/bpkit"),
        (str(HERE / "runner.py"), "/opt/grader/runner.py"),
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
    for key, val in _env("/tmp/home", "/opt/bpkit").items():
        args += ["--setenv", key, val]
    args += ["--chdir", "/tmp", "--"]
    uid = SANDBOX_UIDS[next(_next_uid) % len(SANDBOX_UIDS)]
    args += [
        "setpriv",
        "--reuid=%d" % uid,
        "--regid=%d" % uid,
        "--clear-groups",
        "--",
        "prlimit",
        "--cpu=%d:%d" % (cpu, cpu + 5),
        "--nproc=%d" % nproc,
        "--fsize=%d" % (fsize_mb << 20),
        "--nofile=512",
        "--core=0",
        "--",
        sys.executable,
        "/opt/grader/runner.py",
    ]
    return args


def run(
    notebook,
    *,
    sandbox=True,
    cell_timeout=30,
    timeout=300,
    memory_mb=2048,
    probe=True,
    stop_after=None,
    mpl=None,
    data=None,
    scratch=None,
    cwd=None,
    variants=None,
):
    """Execute a notebook (nbformat node) with runner.py. Returns (result dict or None, problem).

    problem is None, "killed" (ran over `timeout` + grace: process group killed) or a text
    describing a grader-side failure. result follows runner.py's documented format.
    """
    # the memory limit is the kernel's alone (runner.py wraps the kernel in prlimit): the runner
    # must survive receiving the kernel's largest allowed messages
    job = {
        "notebook": notebook,
        "cell_timeout": cell_timeout,
        "total_timeout": timeout,
        "kernel_memory_mb": memory_mb,
        "probe": probe,
        "stop_after": stop_after,
        "limits": LIMITS,
        "variants": variants,
    }
    cpu = int(timeout) + 10
    if sandbox:
        home = "/tmp/home"
        job["workdir"] = "/tmp/work"
        job["makedirs"] = [home, home + "/.config", home + "/runtime", "/tmp/work"]
        job["copy"] = [["/opt/mplcache", home + "/.config/matplotlib"]] if mpl else []
        if data:
            job["copy"].append(["/opt/data", "/tmp/work"])
        cmd = bwrap_command(mpl, data, cpu=cpu, memory_mb=memory_mb)
        env, preexec, run_cwd = None, None, "/"
    else:
        import tempfile

        scratch = scratch or tempfile.mkdtemp(prefix="bpkit-run-")
        home = os.path.join(scratch, "home")
        job["workdir"] = str(cwd) if cwd else os.path.join(scratch, "work")
        job["makedirs"] = [home, home + "/.config", home + "/runtime", job["workdir"]]
        job["copy"] = [[str(mpl), home + "/.config/matplotlib"]] if mpl else []
        if data:
            job["copy"].append([str(data), job["workdir"]])
        env = _env(home, os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        env["TMPDIR"] = scratch
        cmd = [sys.executable, str(HERE / "runner.py")]
        mem = memory_mb << 20

        def preexec():
            if not shutil.which("prlimit"):  # no per-kernel limit possible: limit the runner too
                resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            try:  # die with the grader (PR_SET_PDEATHSIG = 1, SIGKILL)
                import ctypes

                ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)
            except Exception:
                pass

        run_cwd = "/"
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=preexec,
        cwd=run_cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(json.dumps(job).encode(), timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None, "killed"
    finally:
        _kill(proc)
        if not sandbox and scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if not out:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        return None, "runner produced no result (exit %s) %s" % (proc.returncode, " ".join(tail))
    try:
        return json.loads(out), None
    except ValueError:
        return None, "runner result is not JSON (exit %s)" % proc.returncode


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
