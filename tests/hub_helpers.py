"""Machinery for tests/test_hub.py: local Linux users, the proxy from npm, a JupyterHub process
tree that is always stopped, and commands run as one of the users.

Nothing here knows about the course: see test_hub.py for the steps.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

from conftest import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
USER_MARK = "bpkit hub test user"  # GECOS of the users a test creates, with its pid
PROXY_PACKAGE = "configurable-http-proxy@5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def why_not() -> tuple[str, bool] | None:
    """Why this machine cannot run the hub test: (reason, whether the machine itself is the
    cause: no root, no user tools, no npm), or None when it can."""
    if os.geteuid() != 0:
        return "needs root: the test creates Linux users and the hub switches to them", True
    for tool in ("useradd", "userdel", "chpasswd"):
        if not shutil.which(tool):
            return f"no {tool} on this machine: cannot create the course's Linux users", True
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            return f"no {tool}: the hub's proxy (configurable-http-proxy) comes from npm", True
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not installed (apt-get install -y chromium)", False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python package playwright not installed", False
    if not (VENV_BIN / "jupyterhub").exists():
        return f"jupyterhub not installed in {VENV_BIN.parent} (pip install -e '.[hub]')", False
    return None


def proxy_command(timeout: float = 300) -> tuple[Path, float]:
    """configurable-http-proxy from the npm registry, installed once into a cache folder.

    Returns (executable, seconds spent installing; 0 when cached)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bpkit" / "chp"
    exe = cache / "node_modules" / ".bin" / "configurable-http-proxy"
    if exe.exists():
        return exe, 0.0
    t0 = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error"]
        + [PROXY_PACKAGE],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0 and exe.exists(), (
        f"npm install {PROXY_PACKAGE} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    return exe, time.monotonic() - t0


# ---------------------------------------------------------------- users


def _stale_users() -> list[str]:
    """Users created by a test run whose process is gone (killed before it could clean up)."""
    import psutil

    stale = []
    for p in pwd.getpwall():
        m = re.fullmatch(re.escape(USER_MARK) + r" \(pid (\d+)\)", p.pw_gecos)
        if m and not psutil.pid_exists(int(m[1])):
            stale.append(p.pw_name)
    return stale


def _kill_user_processes(uid: int) -> None:
    import psutil

    procs = []
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and uid in (p.info["uids"].real, p.info["uids"].effective):
                p.kill()
                procs.append(p)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def remove_user(name: str) -> None:
    """Kill the user's processes, then remove the user, its group and its home."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    _kill_user_processes(uid)
    subprocess.run(["userdel", "-r", name], capture_output=True, timeout=60)
    subprocess.run(["groupdel", name], capture_output=True, timeout=60)  # if userdel left it


class LocalUsers:
    """Create Linux users (home mode 0700, random password); remove them all on close.

    Users left behind by an earlier run that was killed (its pid in the GECOS mark is gone) are
    removed first; users of a run still going on are left alone."""

    def __init__(self):
        self.passwords: dict[str, str] = {}
        for name in _stale_users():
            remove_user(name)

    def add(self, name: str) -> str:
        mark = f"{USER_MARK} (pid {os.getpid()})"
        proc = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", "--comment", mark, name],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"useradd {name}: {proc.stderr}"
        self.passwords[name] = password = secrets.token_urlsafe(12)
        proc = subprocess.run(
            ["chpasswd"], input=f"{name}:{password}\n", capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"chpasswd {name}: {proc.stderr}"
        os.chmod(self.home(name), 0o700)  # students must not read each other's work
        return password

    @staticmethod
    def home(name: str) -> Path:
        return Path(pwd.getpwnam(name).pw_dir)

    def close(self) -> None:
        for name in self.passwords:
            remove_user(name)


def run_as(user: str, args: list, *, env: dict | None = None, cwd=None, timeout: float = 120):
    """Run a command as `user` (its uid, gid, no other groups), the course venv first on PATH."""
    pw = pwd.getpwnam(user)
    full_env = {
        "HOME": pw.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "PATH": os.pathsep.join([str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
    }
    full_env.update(env or {})
    return subprocess.run(
        [str(a) for a in args],
        user=pw.pw_uid,
        group=pw.pw_gid,
        extra_groups=[],
        env=full_env,
        cwd=str(cwd or pw.pw_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def open_path_for_users(path: Path) -> list[tuple[Path, int]]:
    """Let other users traverse down to `path` (the venv, the repo): add o+x to ancestors that
    lack it (a clone under a 0700 folder). Returns what to restore with restore_modes()."""
    changed = []
    for d in reversed(Path(path).resolve().parents):
        mode = stat.S_IMODE(d.stat().st_mode)
        if not mode & stat.S_IXOTH:
            os.chmod(d, mode | stat.S_IXOTH)
            changed.append((d, mode))
    return changed


def restore_modes(changed: list[tuple[Path, int]]) -> None:
    for d, mode in reversed(changed):
        try:
            os.chmod(d, mode)
        except OSError:
            pass


# ---------------------------------------------------------------- the hub's process tree


class ProcessTree:
    """Every process started for the hub (hub, proxy, user servers, kernels, terminals), so all
    can be killed at the end even when the hub died first and its children were re-parented."""

    def __init__(self, uids: list[int]):
        self.uids = set(uids)
        self.known: dict[int, float] = {}  # pid -> create_time (guards against pid reuse)

    def add(self, pid: int) -> None:
        import psutil

        try:
            p = psutil.Process(pid)
            self.known[pid] = p.create_time()
            for child in p.children(recursive=True):
                self.known[child.pid] = child.create_time()
        except psutil.Error:
            pass

    def snapshot(self, root_pid: int) -> None:
        self.add(root_pid)
        for pid in list(self.known):
            self.add(pid)

    def alive(self) -> list:
        import psutil

        procs = {}
        for pid, created in self.known.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created:
                    procs[pid] = p
            except psutil.Error:
                pass
        for p in psutil.process_iter(["uids"]):
            try:
                if p.info["uids"] and p.info["uids"].real in self.uids:
                    procs[p.pid] = p
            except psutil.Error:
                pass
        return list(procs.values())

    def kill_all(self) -> int:
        import psutil

        procs = self.alive()
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)
        return len(procs)


class Hub:
    """`jupyterhub -f CONFIG` as root in its own session, in `state` (database, cookie secret,
    proxy pid file), logging to state/hub.log."""

    def __init__(self, config: Path, state: Path, env: dict, url: str, uids: list[int]):
        self.config, self.state, self.env, self.url = config, state, env, url.rstrip("/")
        self.tree = ProcessTree(uids)
        self.proc = None
        self.log_path = state / "hub.log"

    def start(self, timeout: float = 90) -> float:
        t0 = time.monotonic()
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(self.config)],
            cwd=self.state,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.tree.add(self.proc.pid)
        while time.monotonic() - t0 < timeout:
            assert self.proc.poll() is None, f"jupyterhub exited:\n{self.log_tail()}"
            self.tree.snapshot(self.proc.pid)
            try:
                with urllib.request.urlopen(self.url + "/hub/health", timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"hub not healthy after {timeout} s:\n{self.log_tail()}")

    def snapshot(self) -> None:
        if self.proc:
            self.tree.snapshot(self.proc.pid)
        pid_file = self.state / "jupyterhub-proxy.pid"
        if pid_file.exists():
            try:
                self.tree.add(int(pid_file.read_text().strip()))
            except ValueError:
                pass

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, grace: float = 20) -> tuple[float, int]:
        """SIGTERM (the hub stops the user servers and the proxy), then SIGKILL whatever of the
        tree is left. Returns (seconds, number of processes that had to be killed)."""
        t0 = time.monotonic()
        if self.proc is None:
            return 0.0, 0
        self.snapshot()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        killed = self.tree.kill_all()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()
        return time.monotonic() - t0, killed
