"""Course support for the notebooks, kept apart from the reference implementation.

checks: the visible checks the notebooks' test cells call (one short message per failure).
plotting: the figures of the series.

Nothing in the reference (bpkit's other modules) imports from here.
"""
