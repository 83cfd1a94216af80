"""Command line: python -m autograder [--course DIR] [--source DIR] [--db-url URL] COMMAND ...

Every user mistake: one line `autograder: error: ...` on stderr and exit code 2.
"""

import argparse
import sys

from .config import Course, UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, got %r" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a number >= 1, got %r" % text)
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds, got %r" % text) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got %r" % text)
    return value


def parser():
    p = _Parser(prog="python -m autograder", description="bpkit course tool (nbgrader based)")
    p.add_argument(
        "--course", help="course state folder (default: env BPKIT_COURSE_DIR or <repo>/course)"
    )
    p.add_argument("--source", help="source notebooks folder (default: <repo>/notebooks)")
    p.add_argument(
        "--db-url",
        metavar="URL",
        help="gradebook database, e.g. postgresql+psycopg://user:password@host/bpkit "
        "(default: env BPKIT_DB_URL or SQLite <course>/gradebook.db)",
    )
    p.add_argument(
        "--wrong-answers",
        help="folder of NN_slug.json wrong answers (default: autograder/wrong_answers)",
    )
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    r = sub.add_parser("release", help="generate the student versions into <course>/release")
    r.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    g = sub.add_parser("grade", help="grade a submitted/ tree")
    g.add_argument("submissions", metavar="SUBMISSIONS")
    g.add_argument("--out", required=True, metavar="OUTDIR")
    # defaults: GraderSettings (autograder/settings.py), overridable in nbgrader_config.py
    g.add_argument("--jobs", type=_positive_int, metavar="N", help="submissions at once (1)")
    g.add_argument("--no-sandbox", action="store_true", help="run without bubblewrap (warns)")
    g.add_argument("--cell-timeout", type=_positive_float, metavar="S", help="per cell (30)")
    g.add_argument("--timeout", type=_positive_float, metavar="S", help="per submission (300)")
    g.add_argument("--memory", type=_positive_int, metavar="MB", help="per sandbox (2048)")
    g.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="grade on the workers of this Dask scheduler (autograder/DISTRIBUTED.md)",
    )
    c = sub.add_parser("check", help="run your notebook and see which exercises pass")
    c.add_argument("notebook", metavar="NOTEBOOK")
    s = sub.add_parser("selfcheck", help="verify the notebooks grade themselves correctly")
    s.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    s.add_argument("--jobs", type=_positive_int, default=1)
    s.add_argument(
        "--evaluator",
        choices=["all", "first", "none"],
        default="all",
        help="grade the source, the student version and every (all) or each exercise's first "
        "(first) recorded wrong answer the way `grade` does, and compare with the kernel's verdicts",
    )
    e = sub.add_parser("export", help="write the gradebook for Canvas, Moodle or as a plain CSV")
    e.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")
    e.add_argument("--format", required=True, metavar="canvas|moodle|csv")
    e.add_argument("--roster", metavar="FILE", help="CSV mapping student ids to LMS identities")
    e.add_argument("--out", required=True, metavar="FILE", help="file to write ('-': stdout)")
    return p


def main(argv=None):
    try:
        args = parser().parse_args(argv)
        if not args.command:
            raise UserError("missing command: release, grade, check, selfcheck or export")
        course = Course(args.course, args.source, args.db_url)
        if args.command in ("release", "grade", "export"):
            course.check_db()
        if args.command == "release":
            from .release import release

            return release(course, args.assignments, sys.stdout)
        if args.command == "grade":
            from .grading import grade
            from .settings import GraderSettings

            settings = GraderSettings(config=course.config)
            for name in ("jobs", "cell_timeout", "timeout", "memory", "scheduler"):
                if getattr(args, name) is not None:
                    setattr(settings, name, getattr(args, name))
            if args.no_sandbox:
                settings.sandbox = False
            from .distributed import ClusterError

            try:
                return grade(course, args.submissions, args.out, settings)
            except ClusterError as exc:  # what was committed stays; a rerun resumes
                sys.stderr.write("autograder: error: %s\n" % exc)
                return 1
        if args.command == "check":
            from .check import check

            return check(args.notebook, sys.stdout)
        if args.command == "selfcheck":
            from .selfcheck import selfcheck

            return selfcheck(
                course,
                args.assignments,
                sys.stdout,
                jobs=args.jobs,
                wrong_dir=args.wrong_answers,
                evaluator=args.evaluator,
            )
        if args.command == "export":
            from .export import export

            return export(course, args.format, args.out, args.roster, args.assignments)
    except UserError as exc:
        sys.stderr.write("autograder: error: %s\n" % exc)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("autograder: interrupted\n")
        return 130
    return 0
