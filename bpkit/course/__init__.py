"""Course support for the notebooks, kept apart from the reference implementation.

checks: the visible checks the notebooks' test cells call (one short message per failure).
answers: symbolic answers (a safe reader for formulas and srepr text, an equivalence checker,
    the sign and factor-2 hints); checks imports it, it imports nothing from bpkit.
plotting: the figures of the series.

Nothing in the reference (bpkit's other modules) imports from here.
"""
