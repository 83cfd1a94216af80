#!/usr/bin/env python3
"""The two commands of the project, runnable with nothing but Python >= 3.10 and pip.

    python3 tasks.py lab     set up (first run) and open JupyterLab on your own copy of the series
    python3 tasks.py test    set up (first run) and run the whole test suite

and, for instructors, `python3 tasks.py formgrader` (nbgrader's formgrader on the course folder).

Setup is a local virtual environment in .venv (override with BPKIT_VENV), reinstalled only when
pyproject.toml changes. `test` also installs the system packages the grader tests need
(bubblewrap for the sandbox, chromium for the browser test) with apt-get when run as root.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("BPKIT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
SYSTEM_PACKAGES = {"bwrap": "bubblewrap", "chromium": "chromium"}


def say(msg: str) -> None:
    print(f"[tasks] {msg}", flush=True)


def die(msg: str, code: int = 2) -> None:
    print(f"[tasks] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def run(cmd: list, **kw) -> None:
    env = kw.pop("env", None) or tool_env()
    result = subprocess.run([str(c) for c in cmd], env=env, **kw)
    if result.returncode != 0:
        die(
            f"command failed with exit code {result.returncode}: {' '.join(map(str, cmd))}",
            result.returncode,
        )


def tool_env() -> dict:
    """Environment with the venv first on PATH (nbgrader calls `alembic` by bare name)."""
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(VENV)
    env.pop("PYTHONHOME", None)
    return env


def ensure_venv(extras: str) -> None:
    """Create .venv on first use and (re)install the project when pyproject.toml changed."""
    if sys.version_info < (3, 10):  # noqa: UP036 (tasks.py may run on an older python3)
        die(f"Python >= 3.10 is needed, this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating a virtual environment in {VENV} (first run only)")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # ensurepip missing on some Debian-like systems
            die(
                f"could not create a virtual environment ({exc}); "
                "on Debian/Ubuntu install it with: apt-get install python3-venv"
            )
    stamp_file = VENV / "bpkit-install.json"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    wanted = sorted(set(extras.split(",")) - {""})
    if stamp.get("pyproject") == digest and set(wanted) <= set(stamp.get("extras", [])):
        return
    target = "." + (f"[{','.join(wanted)}]" if wanted else "")
    say(f"installing {target} into {VENV} (takes about a minute the first time)")
    run([PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([PY, "-m", "pip", "install", "--quiet", "-e", target], cwd=ROOT)
    quiet_jupyterlab()
    stamp_file.write_text(json.dumps({"pyproject": digest, "extras": wanted}))


def quiet_jupyterlab() -> None:
    """No 'Jupyter news' toast: it would try the network on every start."""
    overrides = VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(overrides.read_text()) if overrides.exists() else {}
    settings.setdefault("@jupyterlab/apputils-extension:notification", {})["fetchNews"] = "false"
    overrides.write_text(json.dumps(settings, indent=2))


def ensure_system_packages() -> None:
    """bubblewrap (grading sandbox) and chromium (browser test), from Debian's packages."""
    missing = [pkg for exe, pkg in SYSTEM_PACKAGES.items() if not shutil.which(exe)]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        say(f"installing system packages: {' '.join(missing)}")
        quiet = {"stdout": subprocess.DEVNULL}
        run([apt, "update"], **quiet)
        run(
            [apt, "install", "-y", "--no-install-recommends", *missing],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            **quiet,
        )
        return
    how = f"sudo apt-get install -y {' '.join(missing)}"
    if os.environ.get("CI") == "true":
        die(f"missing system packages {missing} and cannot install them here; run: {how}")
    say(f"note: {', '.join(missing)} not installed; tests needing them are skipped. Install: {how}")


def prepare_workspace(workspace: Path) -> None:
    """Copy the student release into the workspace; never overwrite the learner's files.

    Only assignments whose notebook the workspace lacks are released (nbgrader takes seconds per
    assignment), so later starts are immediate.
    """
    source = Path(os.environ.get("BPKIT_SOURCE_DIR") or ROOT / "notebooks")
    missing = [
        p.parent.name
        for p in sorted(source.glob("[0-9][0-9]_*/*.ipynb"))
        if p.stem == p.parent.name and not (workspace / p.parent.name / p.name).exists()
    ]
    if missing:
        say(f"releasing the student version of {len(missing)} notebook(s)")
        run([PY, "-m", "autograder", "release", *missing], cwd=ROOT)
    copied = 0
    if not release_dir().is_dir():
        return
    for src in sorted(p for p in release_dir().rglob("*") if p.is_file()):
        dst = workspace / src.relative_to(release_dir())
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied += 1
    say(f"workspace {workspace}: {copied} new file(s) copied, existing files left as they are")


def course_dir() -> Path:
    return Path(os.environ.get("BPKIT_COURSE_DIR") or ROOT / "course").resolve()


def release_dir() -> Path:
    return course_dir() / "release"


# nbgrader's instructor and exchange parts: in a student's lab they only show errors ("exchange
# directory does not exist", "Error fetching courses!") and tools for the course's author.
# Validate (validate_assignment) stays.
NBGRADER_SERVER_OFF = ("formgrader", "assignment_list", "course_list")
NBGRADER_LAB_OFF = ("menu", "formgrader", "assignment-list", "course-list", "create-assignment")
START_PAGE = "START.md"
LAB_CONFIG = ".lab-config"  # inside the workspace; rewritten by every `lab`


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def student_lab_config(workspace: Path) -> Path:
    """A Jupyter config folder for the student's server only (used as JUPYTER_CONFIG_PATH).

    It switches off nbgrader's formgrader, exchange and course-list server extensions and the
    matching JupyterLab plugins, opens the start page at launch, and opens Markdown files as
    rendered pages. The venv's own configuration is untouched: an instructor's `jupyter lab`
    (or `python3 tasks.py formgrader`) still has formgrader.
    """
    cfg = workspace / LAB_CONFIG
    write_json(
        cfg / "jupyter_server_config.json",
        {
            "ServerApp": {
                "jpserver_extensions": {
                    f"nbgrader.server_extensions.{name}": False for name in NBGRADER_SERVER_OFF
                }
            },
            "LabApp": {
                "default_url": f"/lab/tree/{START_PAGE}",
                "app_settings_dir": str(cfg / "lab-settings"),
            },
        },
    )
    write_json(
        cfg / "labconfig" / "page_config.json",
        {"disabledExtensions": {f"@jupyter/nbgrader:{name}": True for name in NBGRADER_LAB_OFF}},
    )
    write_json(
        cfg / "lab-settings" / "overrides.json",
        {
            "@jupyterlab/apputils-extension:notification": {
                "fetchNews": "false",
                "checkForUpdates": False,
            },
            "@jupyterlab/docmanager-extension:plugin": {
                "defaultViewers": {"markdown": "Markdown Preview"}
            },
        },
    )
    return cfg


def notebook_title(path: Path) -> str:
    """The first heading of a notebook, without its '#'s (the file name if there is none)."""
    try:
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else source
            for line in text.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    except (OSError, ValueError):
        pass
    return path.stem


def start_page(workspace: Path) -> str:
    """START.md: the series (links into the workspace) and how to check your work."""
    notebooks = sorted(
        p.relative_to(workspace)
        for p in workspace.glob("[0-9][0-9]_*/*.ipynb")
        if p.stem == p.parent.name
    )
    series = "\n".join(
        f"{k}. [{notebook_title(workspace / rel)}]({rel.as_posix()})"
        for k, rel in enumerate(notebooks, 1)
    )
    example = notebooks[min(5, len(notebooks) - 1)].as_posix() if notebooks else "NN/NN.ipynb"
    return f"""# bpkit: your workspace

These are your own copies of the backpropagation series. Your edits stay here: `python3 tasks.py
lab` never overwrites a notebook you already have (delete one to get a fresh copy next time).
Work through the notebooks in order; click a title to open it.

## The series

{series}

## How to check your work

- **Run All** (menu *Run > Run All Cells*) runs the notebook from top to bottom. Under each
  exercise its check cell prints one line: `<exercise>: passed`, a hint about what looks wrong,
  or `not answered yet` while the answer is still `None`. Unanswered exercises do not stop the
  run.
- After changing an answer, run its cell and the check cell under it (*Shift+Enter* twice).
- **Validate** (the button in the notebook's toolbar) runs the whole notebook in a fresh kernel
  and lists the checks that fail.
- From a terminal (*File > New > Terminal*), for points per exercise:

  ```
  python -m autograder check {example}
  ```

  It lists every exercise as passed, failed (with the hint) or not attempted, with its points,
  and your written answers as empty or waiting for the instructor.
- Written answers (cells saying *YOUR ANSWER HERE*) are graded by your instructor; no check
  can see them. The text and the check cells are locked: you cannot edit or delete them.
- Self-learners: the solutions are the notebooks in the repository's `notebooks/` folder. Look
  only after trying.

This page is written by `python3 tasks.py lab` each time it starts.
"""


def cmd_lab(args: argparse.Namespace, extra: list) -> None:
    ensure_venv("")
    workspace = Path(args.workspace).resolve()
    prepare_workspace(workspace)
    (workspace / START_PAGE).write_text(start_page(workspace), encoding="utf-8")
    config = student_lab_config(workspace)
    cmd = [BIN / "jupyter", "lab", f"--ServerApp.root_dir={workspace}"]
    if args.port:
        cmd.append(f"--ServerApp.port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    env = tool_env()
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        filter(None, [str(config), env.get("JUPYTER_CONFIG_PATH")])
    )
    say("starting JupyterLab (stop it with Ctrl-C)")
    os.chdir(workspace)
    os.execve(str(cmd[0]), [str(c) for c in cmd + extra], env)


def cmd_formgrader(args: argparse.Namespace, extra: list) -> None:
    """JupyterLab for the instructor, opened on nbgrader's formgrader.

    Formgrader needs the course folder inside the server's root and reads nbgrader_config.py
    from the working directory: the server runs in autograder/ with the course folder's parent
    as its root.
    """
    ensure_venv("")
    course = course_dir()
    course.mkdir(parents=True, exist_ok=True)
    cmd = [
        BIN / "jupyter",
        "lab",
        f"--ServerApp.root_dir={course.parent}",
        "--LabApp.default_url=/formgrader",
    ]
    if args.port:
        cmd.append(f"--ServerApp.port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    say(f"starting formgrader on {course} (stop it with Ctrl-C)")
    os.chdir(ROOT / "autograder")
    os.execve(str(cmd[0]), [str(c) for c in cmd + extra], tool_env())


def cmd_test(args: argparse.Namespace, extra: list) -> None:
    ensure_venv("test")
    ensure_system_packages()
    say("lint and format check (ruff, settings in pyproject.toml)")
    run([BIN / "ruff", "check", "."], cwd=ROOT)
    run([BIN / "ruff", "format", "--check", "."], cwd=ROOT)
    say("checking every SymPy derivative against bpkit's numeric one")
    run([PY, "-m", "bpkit.symbolic"], cwd=ROOT)
    say("running the test suite")
    cmd = [
        PY,
        "-m",
        "pytest",
        "-n",
        str(args.workers),
        "--dist",
        "loadgroup",
        "--durations=15",
        *extra,
    ]
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=tool_env())
    # pytest exit 5 = no tests collected: that is a failure for this project
    sys.exit(result.returncode if result.returncode != 5 else 1)


def main(argv: list | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python3 tasks.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="set up and start JupyterLab on your copy of the series")
    lab.add_argument(
        "--workspace",
        default=str(ROOT / "workspace"),
        help="folder with your own copies of the notebooks (default: workspace/)",
    )
    lab.add_argument("--port", type=int, default=0, help="port for JupyterLab (default: its own)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    fg = sub.add_parser(
        "formgrader",
        help="instructors: JupyterLab on nbgrader's formgrader for the course folder",
    )
    fg.add_argument("--port", type=int, default=0, help="port for JupyterLab (default: its own)")
    fg.add_argument("--no-browser", action="store_true", help="do not open a browser")
    test = sub.add_parser(
        "test", help="set up and run the whole test suite (extra args go to pytest)"
    )
    test.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    args, unknown = parser.parse_known_args(argv)
    extra = unknown + extra
    if args.command in ("lab", "formgrader") and unknown:
        parser.error(
            f"unknown options for {args.command}: {' '.join(unknown)} "
            "(pass JupyterLab options after --)"
        )
    {"lab": cmd_lab, "formgrader": cmd_formgrader, "test": cmd_test}[args.command](args, extra)


if __name__ == "__main__":
    main()
