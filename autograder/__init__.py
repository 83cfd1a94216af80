"""bpkit course tooling: nbgrader configuration and the grading command line (see README.md)."""
