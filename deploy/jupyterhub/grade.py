"""Grade an instructor's collected submissions in the sandbox; run as root on the hub's machine.

    sudo /srv/bpkit/.venv/bin/python /srv/bpkit/deploy/jupyterhub/grade.py INSTRUCTOR [--jobs N]

The grading sandbox gives every submission a user id of its own (61000-61999), which only root
can do: an instructor's own `python -m autograder grade` would mark every submission `error`.
So this is the one step of the course that runs as root. It
1. refuses a course folder with a symlink in it (root writes there: a link could send the
   writes anywhere),
2. runs `python -m autograder --course C grade C/submitted --out C/results --jobs N`, C being the
   instructor's course folder (--course, else BPKIT_HUB_COURSE_DIR as in jupyterhub_config.py,
   else ~INSTRUCTOR/course); BPKIT_DB_URL passes through for a shared gradebook,
3. copies nbgrader's record of each submission (timestamp.txt, submission_secret.txt) from
   submitted/ to autograded/, where `nbgrader generate_feedback` looks for them (the feedback
   file that `nbgrader release_feedback` puts in the exchange is named after that secret),
4. gives everything in the course folder back to the instructor.
Then the instructor runs `nbgrader generate_feedback A` and `nbgrader release_feedback A` (or the
Formgrader buttons). Exit code: that of `grade` (0 when the batch ran), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDS = ("timestamp.txt", "submission_secret.txt")


def fail(msg: str) -> None:
    print(f"grade.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def course_dir(instructor: pwd.struct_passwd, given: str | None) -> Path:
    if given:
        return Path(given).resolve()
    template = os.environ.get("BPKIT_HUB_COURSE_DIR", "{home}/course")
    return Path(template.format(home=instructor.pw_dir, user=instructor.pw_name))


def symlinks(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if os.path.islink(os.path.join(dirpath, name)):
                found.append(Path(dirpath, name))
    return found


def copy_records(course: Path) -> int:
    """submitted/<student>/<assignment>/{timestamp,submission_secret}.txt -> autograded/..."""
    copied = 0
    for sub in sorted((course / "submitted").glob("*/*")):
        graded = course / "autograded" / sub.relative_to(course / "submitted")
        if not graded.is_dir():
            continue  # not graded (missing, invalid): no feedback either
        for name in RECORDS:
            if (sub / name).is_file():
                shutil.copyfile(sub / name, graded / name)
                copied += 1
    return copied


def give_back(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grade.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("instructor", help="the instructor's Linux user name")
    parser.add_argument("--course", help="the instructor's course folder (default ~/course)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at once")
    parser.add_argument("--python", default=sys.executable, help="the course venv's python")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        fail("run as root (sudo): the grading sandbox switches to a user id per submission")
    try:
        who = pwd.getpwnam(args.instructor)
    except KeyError:
        fail(f"no such user: {args.instructor}")
    course = course_dir(who, args.course)
    if not (course / "submitted").is_dir():
        fail(f"{course}/submitted does not exist: collect first (nbgrader collect ASSIGNMENT)")
    links = symlinks(course)
    if links:
        fail(f"symlinks in the course folder, refusing to write there as root: {links[:5]}")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(args.python).parent), env.get("PATH", "/usr/bin")])
    env.pop("BPKIT_COURSE_DIR", None)
    cmd = [args.python, "-m", "autograder", "--course", str(course), "grade"]
    cmd += [str(course / "submitted"), "--out", str(course / "results"), "--jobs", str(args.jobs)]
    print("grade.py: " + " ".join(cmd), flush=True)
    try:
        code = subprocess.run(cmd, cwd=REPO, env=env).returncode
    finally:
        give_back(course, who.pw_uid, who.pw_gid)
    if code == 0:
        print(f"grade.py: {copy_records(course)} submission record(s) copied to autograded/")
        give_back(course, who.pw_uid, who.pw_gid)
        print(f"grade.py: grades in {course}/results/grades.csv; now, as {who.pw_name}:")
        print("  nbgrader generate_feedback ASSIGNMENT && nbgrader release_feedback ASSIGNMENT")
    return code


if __name__ == "__main__":
    sys.exit(main())
