"""JupyterHub for the bpkit course: local Linux users, one JupyterLab each, nbgrader's exchange.

Run as root from the folder that keeps the hub's state (its database and cookie secret):

    cd /srv/jupyterhub
    BPKIT_HUB_INSTRUCTORS="instructor" BPKIT_HUB_STUDENTS="alice bob" \
        /path/to/bpkit/.venv/bin/jupyterhub -f /path/to/bpkit/deploy/jupyterhub/jupyterhub_config.py

What it sets up (deploy/jupyterhub/README.md has the whole procedure):
- Log-in with the users' Linux passwords (PAM); only the listed instructors and students get in.
- Each user's JupyterLab runs as that Linux user (LocalProcessSpawner), from the course's virtual
  environment (the one this hub runs from), in the user's home folder.
- Every server sees nbgrader_config.py of this folder (the exchange: BPKIT_EXCHANGE, default
  /srv/nbgrader/exchange; the course id "bpkit"). Instructors also get BPKIT_COURSE_DIR
  (default ~/course): with it that file loads the course's own settings
  (autograder/nbgrader_config.py: sources, release, gradebook) and Formgrader works.
  Students get the extra folder student/, which turns Formgrader and the assignment-creation
  toolbar off in their JupyterLab; they keep the Assignments tab and Validate.

Environment read here (all optional except the user lists):
    BPKIT_HUB_INSTRUCTORS  Linux user names, separated by spaces or commas
    BPKIT_HUB_STUDENTS     Linux user names, separated by spaces or commas
    BPKIT_EXCHANGE         the exchange folder (default /srv/nbgrader/exchange)
    BPKIT_HUB_COURSE_DIR   an instructor's course folder; {home} and {user} are replaced
                           (default {home}/course)
    BPKIT_HUB_BIND_URL     where the proxy listens (default http://127.0.0.1:8000; put TLS in
                           front of it, or set c.JupyterHub.ssl_cert/ssl_key, before opening it up)
    BPKIT_HUB_PROXY        the configurable-http-proxy executable (default: found on PATH)
"""

import os
import pwd
import re
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)

HERE = Path(__file__).resolve().parent  # deploy/jupyterhub of the course's repository
VENV_BIN = Path(sys.prefix) / "bin"  # the hub runs from the course's venv: so do the users


def _names(var):
    return [n for n in re.split(r"[\s,]+", os.environ.get(var, "")) if n]


INSTRUCTORS = _names("BPKIT_HUB_INSTRUCTORS")
STUDENTS = _names("BPKIT_HUB_STUDENTS")
EXCHANGE = os.environ.get("BPKIT_EXCHANGE", "/srv/nbgrader/exchange")
COURSE_DIR = os.environ.get("BPKIT_HUB_COURSE_DIR", "{home}/course")

c.JupyterHub.bind_url = os.environ.get("BPKIT_HUB_BIND_URL", "http://127.0.0.1:8000")
if os.environ.get("BPKIT_HUB_PROXY"):
    c.ConfigurableHTTPProxy.command = [os.environ["BPKIT_HUB_PROXY"]]

# who gets in: local users with their Linux password, listed above
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(INSTRUCTORS) | set(STUDENTS)

# one JupyterLab per user, as that user, from the course's venv
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    # the venv first: its python runs the kernels, nbgrader calls `alembic` by name
    "PATH": os.pathsep.join([str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
    "BPKIT_EXCHANGE": EXCHANGE,
    "LANG": "C.UTF-8",
}
c.Spawner.http_timeout = 60  # a cold JupyterLab start on a busy 2-core machine takes 10-20 s
c.Spawner.start_timeout = 120


def _by_role(spawner):
    """Instructors: the course folder and Formgrader. Students: the student settings first."""
    name = spawner.user.name
    env = dict(spawner.environment)
    if name in INSTRUCTORS:
        home = pwd.getpwnam(name).pw_dir
        env["BPKIT_COURSE_DIR"] = COURSE_DIR.format(home=home, user=name)
        env["JUPYTER_CONFIG_PATH"] = str(HERE)
    else:
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(HERE / "student"), str(HERE)])
    spawner.environment = env


c.Spawner.pre_spawn_hook = _by_role
