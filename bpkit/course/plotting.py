"""Plots used by the notebooks (matplotlib; Okabe-Ito colour-blind-safe colours).

Every function draws on `ax` (a new figure when ax is None), labels its axes, sets a title, and
returns the Axes; none of them calls ``plt.show()``. Colour is never the only cue: lines also
differ in style, classes in marker shape, signs of weights in line style.

    error_surface(E, (-2, 2), (-2, 2), point=(1, 1), grad=(2, 2), path=[...])   Micheli fig 1
    network_diagram([1, 2, 1], values=..., deltas=..., weights=...)            Laux sec 5
    loss_curves({"online": h1.loss, "batch": h2.loss})
    decision_boundary(net.predict, X, y)
    gradient_norms({"sigmoid": [...], "relu": [...]})                           Laux sec 3
"""
from __future__ import annotations

import numbers

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["OKABE_ITO", "error_surface", "network_diagram", "loss_curves", "decision_boundary",
           "gradient_norms"]

#: Okabe & Ito (2008) colour-blind-safe palette, in the order bpkit uses it
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "yellow": "#F0E442",
}
COLORS = list(OKABE_ITO.values())
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    elif not isinstance(ax, plt.Axes):
        raise ValueError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _pair(name, value):
    """(low, high) floats with low < high."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not low < high:
        raise ValueError(f"{name} must have low < high, got {value!r}")
    return low, high


def _series(name, curves):
    """{label: 1-D float array} from a dict of sequences."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"{name} must be a non-empty dict {{label: sequence of numbers}}, got {curves!r:.60}")
    out = {}
    for label, seq in curves.items():
        try:
            arr = np.asarray(seq, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{label!r}] must be a sequence of numbers, got {seq!r:.60}") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name}[{label!r}] must be a non-empty 1-D sequence, got shape {arr.shape}")
        out[str(label)] = arr
    return out


# ----------------------------------------------------------------------------------------------

def error_surface(E, w1_range, w2_range, point=None, grad=None, path=None, ax=None, *,
                  ascent=False, labels=("$w_1$", "$w_2$"), resolution=121, title=None):
    """Filled contours of E(w1, w2), the gradient at `point` and a descent `path` (Micheli fig 1).

    E: vectorised function of two equal-shape arrays (w1, w2 grids) returning E on the grid (a
       scalar function is vectorised automatically). w1_range, w2_range: (low, high).
    point: (w1, w2) where the gradient is drawn; grad: (dE/dw1, dE/dw2) there (computed by
       centred differences when None). The arrow points along -grad (descent), or +grad with
       ascent=True (Betke maximises P). path: sequence of (w1, w2), drawn with markers.
    """
    ax = _axes(ax)
    if not callable(E):
        raise ValueError(f"E must be a function of (w1, w2), got {type(E).__name__}")
    lo1, hi1 = _pair("w1_range", w1_range)
    lo2, hi2 = _pair("w2_range", w2_range)
    W1, W2 = np.meshgrid(np.linspace(lo1, hi1, resolution), np.linspace(lo2, hi2, resolution))
    with np.errstate(all="ignore"):
        try:
            Z = np.asarray(E(W1, W2), dtype=float)
        except (TypeError, ValueError):  # E takes numbers only: evaluate point by point
            Z = None
        if Z is None or Z.shape != W1.shape:
            Z = np.vectorize(lambda u, v: float(E(u, v)))(W1, W2)
    if not np.isfinite(Z).any():
        raise ValueError("E is not finite anywhere on the grid")
    filled = ax.contourf(W1, W2, Z, levels=20, cmap="viridis")
    ax.contour(W1, W2, Z, levels=filled.levels, colors="white", linewidths=0.4, alpha=0.6)
    ax.figure.colorbar(filled, ax=ax, label="E" if not ascent else "P")

    if path is not None:
        P = np.asarray(path, dtype=float)
        if P.ndim != 2 or P.shape[1] != 2:
            raise ValueError(f"path must be a sequence of (w1, w2) pairs, got shape {P.shape}")
        ax.plot(P[:, 0], P[:, 1], "-o", color=OKABE_ITO["orange"], markersize=4, lw=1.5,
                markeredgecolor="black", markeredgewidth=0.5,
                label=f"{'ascent' if ascent else 'descent'} path ({len(P) - 1} steps)")
        ax.plot(*P[0], "s", color=OKABE_ITO["orange"], markeredgecolor="black", markersize=8, label="start")
        ax.plot(*P[-1], "*", color=OKABE_ITO["yellow"], markeredgecolor="black", markersize=14, label="end")

    if point is not None:
        p = np.asarray(point, dtype=float)
        if p.shape != (2,):
            raise ValueError(f"point must be (w1, w2), got {point!r}")
        if grad is None:
            h = 1e-6 * max(hi1 - lo1, hi2 - lo2)
            f = lambda u, v: float(np.asarray(E(np.array([[u]]), np.array([[v]]))).ravel()[0])  # noqa: E731
            grad = ((f(p[0] + h, p[1]) - f(p[0] - h, p[1])) / (2 * h),
                    (f(p[0], p[1] + h) - f(p[0], p[1] - h)) / (2 * h))
        g = np.asarray(grad, dtype=float)
        if g.shape != (2,):
            raise ValueError(f"grad must be (dE/dw1, dE/dw2), got {grad!r}")
        ax.plot(*p, "o", color="white", markeredgecolor="black", markersize=8, zorder=5)
        norm = float(np.hypot(*g))
        if norm > 0:
            direction = (g if ascent else -g) / norm
            length = 0.2 * min(hi1 - lo1, hi2 - lo2)
            tip = p + length * direction
            ax.annotate("", xy=tip, xytext=p, zorder=6,
                        arrowprops=dict(arrowstyle="-|>", color=OKABE_ITO["vermillion"], lw=2.5,
                                        mutation_scale=18))
            ax.plot([], [], color=OKABE_ITO["vermillion"], lw=2.5,
                    label=("$+\\nabla P$ (ascent)" if ascent else "$-\\nabla E$ (descent direction)")
                    + f", |grad| = {norm:.3g}")
    ax.set_xlim(lo1, hi1)
    ax.set_ylim(lo2, hi2)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title or ("Performance surface P(w1, w2)" if ascent else "Error surface E(w1, w2)"))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.9)
    return ax


# ----------------------------------------------------------------------------------------------

def _per_layer(name, data, sizes):
    if data is None:
        return None
    if len(data) != len(sizes):
        raise ValueError(f"{name} must have one entry per layer ({len(sizes)}), got {len(data)}")
    out = []
    for l, (entry, n) in enumerate(zip(data, sizes)):
        if entry is None:
            out.append(None)
            continue
        entry = list(np.ravel(np.asarray(entry, dtype=object)))
        if len(entry) != n:
            raise ValueError(f"{name}[{l}] must have {n} entries (one per unit), got {len(entry)}")
        out.append(entry)
    return out


def _short(v):
    if isinstance(v, str):
        return v
    if isinstance(v, numbers.Real):
        return f"{float(v):.3g}"
    return str(v)


def network_diagram(sizes, values=None, deltas=None, labels=None, weights=None, ax=None, *, title=None):
    """Units as circles in layers (left = input), edges between layers, values and deltas as text.

    sizes: units per layer, e.g. [1, 2, 1] (at most 8 per layer). values, deltas, labels: one
    entry per layer (None to skip a layer) with one number or string per unit; values are the
    forward outputs, written under each unit, deltas under them (Laux's delta = dE/da).
    weights: one matrix per pair of layers, weights[l] of shape (sizes[l+1], sizes[l]) (bpkit's
    W[j, i] = w_ji); edges are solid for weights >= 0, dashed for < 0, and labelled with the
    weight (for more than 6 edges between two layers the line width shows |w| instead).
    """
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be a list of unit counts like [2, 3, 1], got {sizes!r}") from None
    if len(sizes) < 2 or min(sizes) < 1 or max(sizes) > 8:
        raise ValueError(f"sizes must list 2 or more layers of 1 to 8 units, got {sizes}")
    values = _per_layer("values", values, sizes)
    deltas = _per_layer("deltas", deltas, sizes)
    if labels is None:
        names = ["x"] + ["h" if len(sizes) == 3 else f"h^{l}" for l in range(1, len(sizes) - 1)] + ["y"]
        labels = [[f"${n}_{{{j + 1}}}$" for j in range(k)] for n, k in zip(names, sizes)]
    labels = _per_layer("labels", labels, sizes)
    if weights is not None:
        if len(weights) != len(sizes) - 1:
            raise ValueError(f"weights must have {len(sizes) - 1} matrices, got {len(weights)}")
        weights = [np.asarray(w, dtype=float) for w in weights]
        for l, w in enumerate(weights):
            if w.shape != (sizes[l + 1], sizes[l]):
                raise ValueError(f"weights[{l}] must have shape {(sizes[l + 1], sizes[l])} "
                                 f"(units out, units in), got {w.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4 * len(sizes) + 1.0, 1.1 * max(sizes) + 1.8), layout="constrained")
    ax = _axes(ax)
    biggest = max((float(np.max(np.abs(w))) for w in weights), default=0.0) if weights else 0.0

    gap = 1.6
    pos = [[(l * 3.0, (k - 1) / 2 * gap - j * gap) for j in range(k)] for l, k in enumerate(sizes)]
    r = 0.38
    for l in range(len(sizes) - 1):
        for j, (xj, yj) in enumerate(pos[l + 1]):
            for i, (xi, yi) in enumerate(pos[l]):
                w = None if weights is None else weights[l][j, i]
                style = "--" if w is not None and w < 0 else "-"
                color = OKABE_ITO["vermillion"] if w is not None and w < 0 else OKABE_ITO["blue"]
                many = sizes[l] * sizes[l + 1] > 6   # too many edges to write every weight
                lw = 0.6 + 2.4 * abs(w) / biggest if many and w is not None and biggest > 0 else 1.2
                ax.plot([xi + r, xj - r], [yi, yj], style, color=color, lw=lw, zorder=1)
                if w is not None and not many:
                    t = 0.68
                    ax.text(xi + r + t * (xj - xi - 2 * r), yi + t * (yj - yi), f"{w:.3g}", fontsize=9,
                            ha="center", va="center", zorder=3, color=color,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    for l, layer in enumerate(pos):
        fill = OKABE_ITO["sky blue"] if l == 0 else OKABE_ITO["orange"] if l == len(pos) - 1 else "#DDDDDD"
        for j, (x, y) in enumerate(layer):
            ax.add_patch(plt.Circle((x, y), r, facecolor=fill, edgecolor="black", lw=1.2, zorder=2))
            if labels and labels[l] is not None:
                ax.text(x, y, _short(labels[l][j]), ha="center", va="center", fontsize=11, zorder=4)
            below = []
            if values and values[l] is not None:
                below.append(f"out = {_short(values[l][j])}")
            if deltas and deltas[l] is not None:
                below.append(f"δ = {_short(deltas[l][j])}")
            if below:
                ax.text(x, y - r - 0.08, "\n".join(below), ha="center", va="top", fontsize=8.5, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    height = max(sizes) * gap
    ax.set_xlim(-1.0, (len(sizes) - 1) * 3.0 + 1.0)
    ax.set_ylim(-height / 2 - 0.6, height / 2 + 0.2)
    ax.set_aspect("equal")
    ax.set_xticks([l * 3.0 for l in range(len(sizes))])
    ax.set_xticklabels(["input"] + [f"hidden {l}" for l in range(1, len(sizes) - 1)] + ["output"])
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("layer")
    ax.set_ylabel("units")
    legend = ""
    if weights is not None:
        legend = "\n(dashed edges: negative weights"
        if any(a * b > 6 for a, b in zip(sizes, sizes[1:])):
            legend += "; line width ~ |weight| where there are too many edges to label"
        legend += ")"
    ax.set_title((title or f"Network {'-'.join(map(str, sizes))}") + legend)
    return ax


# ----------------------------------------------------------------------------------------------

def loss_curves(curves, log=True, ax=None, *, xlabel="epoch", ylabel="loss", title="Learning curves"):
    """One line per label of loss against epoch (1, 2, ...); log-scale y when log and all > 0.

    curves: {label: sequence of losses}, e.g. {"lr = 0.1": history.loss}.
    """
    ax = _axes(ax)
    series = _series("curves", curves)
    for k, (label, y) in enumerate(series.items()):
        ax.plot(np.arange(1, y.size + 1), y, color=COLORS[k % len(COLORS)],
                linestyle=LINESTYLES[k % len(LINESTYLES)], lw=1.8, label=label)
    positive = all(np.all(y[np.isfinite(y)] > 0) for y in series.values())
    if log and positive:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if log and positive else ""))
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# ----------------------------------------------------------------------------------------------

def decision_boundary(predict, X, y, ax=None, *, resolution=200, title="Decision boundary",
                      labels=("$x_1$", "$x_2$")):
    """Regions of the plane coloured by predict's class, with the data on top (a marker per class).

    predict: function mapping an (M, 2) array of points to M class labels (e.g. MLP.predict).
    X: (N, 2) inputs; y: (N,) integer class labels (or (N, 1)).
    """
    ax = _axes(ax)
    if not callable(predict):
        raise ValueError(f"predict must be a function of an (M, 2) array, got {type(predict).__name__}")
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2), got {X.shape}")
    y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) (one label per row of X), got {y.shape}")
    span = np.ptp(X, axis=0)
    span = np.where(span > 0, span, 1.0)
    lo, hi = X.min(0) - 0.1 * span, X.max(0) + 0.1 * span
    G1, G2 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([G1.ravel(), G2.ravel()])
    Z = np.asarray(predict(grid))
    if Z.ndim == 2 and Z.shape[1] == 1:
        Z = Z[:, 0]
    if Z.shape != (grid.shape[0],):
        raise ValueError(f"predict must return one label per point, shape ({grid.shape[0]},); got {Z.shape}")
    classes = np.unique(np.concatenate([np.unique(y), np.unique(Z)]))
    index = {c: k for k, c in enumerate(classes)}
    Zi = np.vectorize(index.get)(Z).reshape(G1.shape).astype(float)
    from matplotlib.colors import ListedColormap
    cmap = ListedColormap([COLORS[1:][k % (len(COLORS) - 1)] for k in range(len(classes))])
    ax.contourf(G1, G2, Zi, levels=np.arange(len(classes) + 1) - 0.5, cmap=cmap, alpha=0.3)
    if len(classes) > 1:
        ax.contour(G1, G2, Zi, levels=np.arange(len(classes)) + 0.5, colors="black", linewidths=1.0)
    for c in classes:
        k = index[c]
        mask = y == c
        if mask.any():
            ax.scatter(X[mask, 0], X[mask, 1], color=COLORS[1:][k % (len(COLORS) - 1)],
                       marker=MARKERS[k % len(MARKERS)], edgecolors="black", linewidths=0.6,
                       s=36, label=f"class {c}", zorder=3)
    accuracy = float(np.mean(np.asarray(predict(X)).reshape(-1) == y))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"{title} (training accuracy {accuracy:.0%})")
    ax.legend(fontsize="small", loc="best")
    return ax


# ----------------------------------------------------------------------------------------------

def gradient_norms(norms, ax=None, *, title="Gradient norm per layer", ylabel="$\\|\\partial E / \\partial W_l\\|$"):
    """Per-layer gradient norms, x = layer index (1 = nearest the input), log-scale y.

    norms: {label: sequence with one norm per layer}, e.g. {"sigmoid": history.grad_norms[0]}.
    Layers where a norm is 0 (a dead layer) cannot be shown on a log scale: the y axis is then
    linear and the title says so.
    """
    ax = _axes(ax)
    series = _series("norms", norms)
    for k, (label, v) in enumerate(series.items()):
        ax.plot(np.arange(1, v.size + 1), v, color=COLORS[k % len(COLORS)],
                linestyle=LINESTYLES[k % len(LINESTYLES)], marker=MARKERS[k % len(MARKERS)], lw=1.8,
                label=label)
    positive = all(np.all(v > 0) for v in series.values())
    if positive:
        ax.set_yscale("log")
    longest = max(v.size for v in series.values())
    ax.set_xticks(np.arange(1, longest + 1))
    ax.set_xlabel("layer l (1 = first layer, next to the input)")
    ax.set_ylabel(ylabel + (" (log scale)" if positive else ""))
    ax.set_title(title if positive else title + " (linear scale: some norms are 0)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax
