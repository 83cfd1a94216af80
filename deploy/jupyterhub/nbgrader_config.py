"""nbgrader settings every user of the bpkit hub sees: the exchange and the course id.

JupyterHub puts this folder on each user's JUPYTER_CONFIG_PATH (see jupyterhub_config.py); on a
hub set up by hand, copy this file to /etc/jupyter/nbgrader_config.py instead. Students fetch
and submit through the exchange with these two settings alone. For instructors (BPKIT_COURSE_DIR
is set) it also loads the course's own settings, autograder/nbgrader_config.py of the repository
(sources, release, gradebook; BPKIT_DB_URL for a shared gradebook), so `nbgrader ...` in their
terminal and Formgrader work from any folder.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

# the exchange: a folder every user can write to (mode 1777, see README.md); nbgrader creates
# bpkit/outbound (released assignments), bpkit/inbound (submissions) and bpkit/feedback in it
c.Exchange.root = os.environ.get("BPKIT_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = "bpkit"

if os.environ.get("BPKIT_COURSE_DIR"):  # an instructor: the course's own settings
    _repo = os.environ.get("BPKIT_REPO") or os.path.join(os.path.dirname(__file__), "..", "..")
    load_subconfig(  # noqa: F821 (provided by traitlets)
        os.path.abspath(os.path.join(_repo, "autograder", "nbgrader_config.py"))
    )
