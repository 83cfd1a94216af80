"""bpkit.course.plotting: each function returns a labelled Axes, draws what it promises, never warns."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from bpkit.course import plotting  # noqa: E402
from bpkit.course.plotting import OKABE_ITO  # noqa: E402

PALETTE = {c.lower() for c in OKABE_ITO.values()}


@pytest.fixture(autouse=True)
def _strict():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def render(ax):
    """Draw the figure to PNG bytes (catches errors that only appear when drawing)."""
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def labelled(ax):
    assert isinstance(ax, plt.Axes)
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def E(w1, w2):
    return (w1 - 1) ** 2 + 3 * (w2 + 0.5) ** 2


def test_error_surface_arrow_points_downhill():
    path = [(-1.5, 1.5), (-1.0, 0.5), (0.0, -0.2), (0.9, -0.5)]
    ax = plotting.error_surface(
        E, (-2, 2), (-2, 2), point=(-1.5, 1.5), grad=(-5.0, 12.0), path=path
    )
    labelled(ax)
    arrows = [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 1
    tail, tip = np.array(arrows[0].xyann), np.array(arrows[0].xy)
    step = tip - tail
    assert np.allclose(tail, (-1.5, 1.5))
    assert np.allclose(step / np.linalg.norm(step), np.array([5.0, -12.0]) / 13.0)  # -grad
    labels = ax.get_legend_handles_labels()[1]
    assert any("descent direction" in s for s in labels)
    assert any("path" in s for s in labels)
    line = next(l for l in ax.lines if l.get_label().startswith("descent path"))
    assert np.allclose(line.get_xydata(), path) and line.get_marker() == "o"
    render(ax)


def test_error_surface_gradient_by_differences_and_ascent():
    ax = plotting.error_surface(E, (-2, 2), (-2, 2), point=(-1.5, 1.5))  # grad computed: (-5, 12)
    arrow = next(c for c in ax.texts if getattr(c, "arrow_patch", None) is not None)
    step = np.array(arrow.xy) - np.array(arrow.xyann)
    assert np.allclose(step / np.linalg.norm(step), np.array([5.0, -12.0]) / 13.0, atol=1e-6)
    P = lambda w1, w2: -E(w1, w2)  # noqa: E731
    ax = plotting.error_surface(
        P, (-2, 2), (-2, 2), point=(-1.5, 1.5), grad=(5.0, -12.0), ascent=True
    )
    arrow = next(c for c in ax.texts if getattr(c, "arrow_patch", None) is not None)
    step = np.array(arrow.xy) - np.array(arrow.xyann)
    assert np.allclose(step / np.linalg.norm(step), np.array([5.0, -12.0]) / 13.0)  # +grad P
    assert "ascent" in " ".join(ax.get_legend_handles_labels()[1])
    # a scalar-only function is vectorised
    ax = plotting.error_surface(lambda u, v: float(u * u + v * v), (-1, 1), (-1, 1), resolution=15)
    labelled(ax)


def test_error_surface_validation():
    with pytest.raises(ValueError, match="w1_range"):
        plotting.error_surface(E, (2, -2), (-2, 2))
    with pytest.raises(ValueError, match="path"):
        plotting.error_surface(E, (-2, 2), (-2, 2), path=[1, 2, 3])
    with pytest.raises(ValueError, match="function"):
        plotting.error_surface(3, (-2, 2), (-2, 2))


def test_network_diagram_laux_example():
    # Laux sec 5: x = 1, h = (0, 3), y = 13, deltas (0, 48) and 12; w1 = 1, w2 = 2, w3 = -3, w4 = 4
    weights = [np.array([[1.0], [2.0]]), np.array([[-3.0, 4.0]])]
    ax = plotting.network_diagram(
        [1, 2, 1],
        values=[[1], [0, 3], [13]],
        deltas=[None, [0, 48], [12]],
        weights=weights,
        labels=[["x"], ["h1", "h2"], ["y"]],
    )
    assert isinstance(ax, plt.Axes) and ax.get_title().startswith("Network 1-2-1")
    texts = [t.get_text() for t in ax.texts]
    for s in ("x", "h1", "h2", "y", "-3", "4", "out = 13", "δ = 48", "δ = 12"):
        assert any(s == t or s in t.split("\n") for t in texts), s
    assert len([p for p in ax.patches if isinstance(p, plt.Circle)]) == 4
    edges = [l for l in ax.lines]
    assert len(edges) == 4
    assert sum(l.get_linestyle() == "--" for l in edges) == 1  # the one negative weight
    render(ax)


def test_network_diagram_bigger_and_validation():
    rng = np.random.default_rng(0)
    ax = plotting.network_diagram(
        [3, 6, 2], weights=[rng.normal(size=(6, 3)), rng.normal(size=(2, 6))]
    )
    assert len(ax.lines) == 3 * 6 + 6 * 2
    render(ax)
    with pytest.raises(ValueError, match="shape"):
        plotting.network_diagram([2, 2, 1], weights=[np.ones((2, 2)), np.ones((2, 1))])
    with pytest.raises(ValueError, match="values"):
        plotting.network_diagram([2, 1], values=[[1, 2], [1, 2]])
    with pytest.raises(ValueError):
        plotting.network_diagram([2])


def test_loss_curves():
    curves = {"online": np.exp(-np.arange(30) / 5) + 0.01, "batch": 1 / (1 + np.arange(30))}
    ax = plotting.loss_curves(curves)
    labelled(ax)
    assert ax.get_yscale() == "log"
    assert [l.get_label() for l in ax.lines] == ["online", "batch"]
    assert {to_hex(l.get_color()) for l in ax.lines} <= PALETTE
    assert len({l.get_linestyle() for l in ax.lines}) == 2  # not colour alone
    assert np.array_equal(ax.lines[0].get_xdata(), np.arange(1, 31))
    render(ax)
    ax = plotting.loss_curves({"with zeros": [1.0, 0.0]}, log=True)
    assert ax.get_yscale() == "linear"
    with pytest.raises(ValueError):
        plotting.loss_curves([1, 2, 3])


def test_decision_boundary():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    ax = plotting.decision_boundary(lambda P: (P[:, 0] + P[:, 1] > 0).astype(int), X, y)
    labelled(ax)
    assert "100%" in ax.get_title()
    scatters = [c for c in ax.collections if c.get_label().startswith("class")]
    assert [c.get_label() for c in scatters] == ["class 0", "class 1"]
    assert len({id(c.get_paths()[0]) for c in scatters}) == 2  # different markers
    assert {to_hex(c.get_facecolor()[0]) for c in scatters} <= PALETTE
    render(ax)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plotting.decision_boundary(lambda P: P[:, 0] > 0, np.ones((5, 3)), np.ones(5))
    with pytest.raises(ValueError, match="one label per point"):
        plotting.decision_boundary(lambda P: np.zeros(3), X, y)


def test_gradient_norms():
    ax = plotting.gradient_norms({"sigmoid": [1e-5, 1e-3, 1e-1], "relu": [0.3, 0.4, 0.5]})
    labelled(ax)
    assert ax.get_yscale() == "log"
    assert np.array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    assert ax.lines[0].get_marker() != ax.lines[1].get_marker()
    render(ax)
    ax = plotting.gradient_norms({"dead": [0.0, 0.1]})
    assert ax.get_yscale() == "linear" and "0" in ax.get_title()


def test_given_axes_are_used():
    fig, axes = plt.subplots(1, 2)
    assert plotting.loss_curves({"a": [3, 2, 1]}, ax=axes[1]) is axes[1]
    assert plotting.gradient_norms({"a": [3, 2, 1]}, ax=axes[0]) is axes[0]
    with pytest.raises(ValueError, match="Axes"):
        plotting.loss_curves({"a": [1]}, ax="not axes")
