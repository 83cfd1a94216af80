"""Services for tests: a private PostgreSQL server.

`postgres_server` (session): Debian's PostgreSQL (installed with apt-get when missing and we are
root), a fresh cluster in a temp folder (initdb), listening on 127.0.0.1 only on a free port, with
a random password; stopped and deleted after the session. `postgres_url`: a new empty database on
that server per test, as a SQLAlchemy URL (postgresql+psycopg://...).

Skipped, with the reason, only when the machine cannot have PostgreSQL: not installed and not
root, no psycopg driver, or no unprivileged user to run the server as root.

Use from a test module: `from services import postgres_server, postgres_url  # noqa: F401`.
"""

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

SETUP_TIMES = {}  # name -> seconds, for reports


def _pg_bindir():
    """Folder of initdb/pg_ctl/postgres: Debian keeps them in /usr/lib/postgresql/<v>/bin."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _apt_install():
    """apt-get install postgresql, without the package's default cluster on port 5432."""
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("create_main_cluster = false\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update"],
        [
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "postgresql",
        ],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail("%s failed: %s" % (" ".join(cmd), proc.stderr[-1500:]))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir, user):
        self.bindir = bindir
        self.user = user  # None: run as ourselves; else a pwd entry to switch to
        self.base = Path(tempfile.mkdtemp(prefix="bpkit-pg-"))  # /tmp itself: reachable by user
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.role = "bpkit"
        self.password = secrets.token_hex(16)
        self.port = None
        self.started = False

    def _run(self, *args, timeout=120):
        cmd = [str(self.bindir / args[0]), *map(str, args[1:])]
        if self.user is not None:
            runuser, setpriv = shutil.which("runuser"), shutil.which("setpriv")
            if runuser:
                cmd = [runuser, "-u", self.user.pw_name, "--", *cmd]
            else:
                cmd = [
                    setpriv or "setpriv",
                    "--reuid=%d" % self.user.pw_uid,
                    "--regid=%d" % self.user.pw_gid,
                    "--init-groups",
                    *cmd,
                ]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        proc = subprocess.run(
            cmd, cwd=self.base, env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            log = self.log.read_text()[-1500:] if self.log.exists() else ""
            raise RuntimeError(
                "%s failed (%d): %s %s %s"
                % (args[0], proc.returncode, proc.stdout[-800:], proc.stderr[-1500:], log)
            )
        return proc

    def start(self):
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        os.chmod(self.base, 0o700)
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            self.role,
            "--pwfile",
            pwfile,
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        for attempt in range(3):
            self.port = _free_port()
            opts = (
                "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
                % (self.port, self.base)
            )
            try:
                self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", opts, "-w", "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.started = True

    def url(self, database="postgres"):
        return "postgresql+psycopg://%s:%s@127.0.0.1:%d/%s" % (
            self.role,
            self.password,
            self.port,
            database,
        )

    def create_database(self, name):
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "%s"' % name)
        return self.url(name)

    def stop(self):
        try:
            if self.started:
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A running private PostgreSQL server (see the module docstring)."""
    t0 = time.monotonic()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("no psycopg driver: pip install -e '.[test]' (or '.[postgres]')")
    root = os.geteuid() == 0
    bindir = _pg_bindir()
    if bindir is None:
        if not root or not shutil.which("apt-get"):
            pytest.skip("PostgreSQL is not installed and this user cannot apt-get install it")
        _apt_install()
        bindir = _pg_bindir()
        if bindir is None:
            pytest.fail("apt-get install postgresql gave no initdb under /usr/lib/postgresql")
    user = None
    if root:  # initdb and postgres refuse to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    server = PostgresServer(bindir, user)
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    SETUP_TIMES["postgres_server"] = time.monotonic() - t0
    sys.stderr.write(
        "postgres_server: %s on 127.0.0.1:%d ready in %.2f s\n"
        % (bindir, server.port, SETUP_TIMES["postgres_server"])
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """A new empty database on the private server; its SQLAlchemy URL."""
    name = "t_%s_%s" % (request.node.name[:30].lower(), secrets.token_hex(3))
    name = "".join(ch if ch.isalnum() else "_" for ch in name)
    return postgres_server.create_database(name)
