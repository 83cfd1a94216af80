"""Every limit of the grader in one place, nbgrader style (traitlets, with help text).

Set them in autograder/nbgrader_config.py (``c.GraderSettings.cell_timeout = 60``) or on the
command line (``grade --cell-timeout 60``); the command line wins.
"""

from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import Configurable


class GraderSettings(Configurable):
    # where and how many at once
    jobs = Integer(1, help="Submissions graded at the same time.").tag(config=True)
    sandbox = Bool(True, help="Run submissions in the bubblewrap sandbox.").tag(config=True)
    scheduler = Unicode(
        "",
        help="Dask scheduler address (tcp://HOST:PORT): grade on its workers instead of on this "
        "machine (autograder/DISTRIBUTED.md). Empty: grade locally.",
    ).tag(config=True)

    # time
    cell_timeout = Float(
        30.0, help="Seconds one cell (or one call into student code) may run."
    ).tag(config=True)
    timeout = Float(300.0, help="Seconds one submission may run in all.").tag(config=True)

    # the sandbox's resources
    memory = Integer(
        2048, help="MB of memory for the whole sandbox (kernel, driver and their children)."
    ).tag(config=True)
    processes = Integer(256, help="Processes (and threads) one sandbox may have.").tag(config=True)
    file_mb = Integer(64, help="MB one file written in the sandbox may reach.").tag(config=True)
    tmp_mb = Integer(512, help="MB of the sandbox's private /tmp.").tag(config=True)

    # outputs kept in the executed notebook (update_display and comm messages count too)
    text_bytes = Integer(100_000, help="Bytes of one text output kept.").tag(config=True)
    image_bytes = Integer(1_000_000, help="Bytes of one image output kept.").tag(config=True)
    cell_bytes = Integer(2_000_000, help="Bytes of output kept per cell.").tag(config=True)
    notebook_bytes = Integer(10_000_000, help="Bytes of output kept per notebook.").tag(config=True)
    message_bytes = Integer(
        16_000_000, help="Largest single message the kernel may send (larger ones are dropped)."
    ).tag(config=True)

    # input and feedback
    submission_mb = Integer(20, help="MB a submitted notebook file may have.").tag(config=True)
    feedback_timeout = Float(20.0, help="Seconds to render one feedback page.").tag(config=True)
    feedback_memory = Integer(1024, help="MB for rendering one feedback page.").tag(config=True)

    def output_limits(self):
        return {
            "text": self.text_bytes,
            "image": self.image_bytes,
            "cell": self.cell_bytes,
            "notebook": self.notebook_bytes,
            "message": self.message_bytes,
        }

    def trait_values_for_job(self):
        """The settings as plain data (sent to the worker that grades one notebook)."""
        return {name: getattr(self, name) for name in self.trait_names(config=True)}

    def key(self):
        """What changes a grade: part of the resume key."""
        return [self.sandbox, self.cell_timeout, self.timeout, self.memory]
