"""Adversarial submissions for the grader, built at test time (no binary blobs in the repo).

- `fixture`: a tiny nbgrader source course (one assignment, three exercises).
- `corpus`: one builder per adversarial case, each with the outcome the grader must produce.
- `harness`: running the grader CLI, reading its CSV files, hashing folders.
"""
