"""Update rules: given the gradient dE/dw, change w (Micheli: "Standard Back-prop, Quick-prop,
R-prop, ...").

Each optimizer has .step(params, grads): params a list of arrays (e.g. MLP.params()),
grads the matching list of dE/dparam (e.g. bpkit.network.interleave(dW, db)); the arrays in
params are updated in place. Per-parameter state (velocity, step sizes, ...) is created on the
first step, so an optimizer belongs to one list of parameters.
"""

import numpy as np


def _check(params, grads):
    if len(params) != len(grads):
        raise ValueError(
            f"params and grads must have the same length; given {len(params)} and {len(grads)}"
        )
    for i, (p, g) in enumerate(zip(params, grads)):
        if np.shape(p) != np.shape(g):
            raise ValueError(
                f"grads[{i}] has shape {np.shape(g)} but params[{i}] has shape {np.shape(p)}"
            )


def _work(work, params):
    """One work array per parameter, kept between steps (new ones when the shapes change).

    Why: GradientDescent and Momentum compute lr * g into it instead of into a new array. A new
    weight-sized temporary per step let glibc hand the freed memory back to the system and fault
    it in again on the next step: measured with benchmarks/bench_bpkit.py (784-256-256-10,
    float64, one thread), a step took 4.7 ms instead of 3.0 ms at batch 128 and 2.5 ms instead
    of 0.9 ms at batch 32. Reusing the network's own arrays (the forward and backward pass)
    made no measurable difference, so only this trick is kept.
    """
    if work is None or [(w.shape, w.dtype) for w in work] != [(p.shape, p.dtype) for p in params]:
        work = [np.empty_like(p) for p in params]
    return work


def _positive(name, value):
    if not (np.isscalar(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; given {value!r}")
    return float(value)


class GradientDescent:
    """w <- w - lr dE/dw   (Laux eq 4; Micheli w_new = w + eta delta o with delta = -dE/dnet)."""

    def __init__(self, lr):
        self.lr = _positive("lr", lr)
        self.work = None

    def step(self, params, grads):
        _check(params, grads)
        self.work = _work(self.work, params)
        for p, g, lr_g in zip(params, grads, self.work):
            np.multiply(self.lr, g, out=lr_g)  # lr * g, in a kept array (see _work)
            p -= lr_g  # Laux eq 4


class Momentum:
    """Gradient descent with momentum, Micheli's "+ ..." term:

    dw(t) = -lr dE/dw(t) + momentum dw(t-1),   w <- w + dw(t),   dw(0) = 0.
    """

    def __init__(self, lr, momentum=0.9):
        self.lr = _positive("lr", lr)
        if not (np.isscalar(momentum) and 0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1); given {momentum!r}")
        self.momentum = float(momentum)
        self.velocity = self.work = None

    def step(self, params, grads):
        _check(params, grads)
        if self.velocity is None:
            self.velocity = [np.zeros_like(p) for p in params]
        self.work = _work(self.work, params)
        for p, g, v, lr_g in zip(params, grads, self.velocity, self.work):
            np.multiply(self.lr, g, out=lr_g)  # lr * g, in a kept array (see _work)
            v *= self.momentum
            v -= lr_g  # dw(t) = momentum dw(t-1) - lr g
            p += v  # w <- w + dw(t)


class Rprop:
    """Resilient backpropagation, the iRprop- variant (Igel & Huesken 2000, after Riedmiller &
    Braun 1993). Only the SIGN of each partial derivative is used; every weight has its own step:

      same sign as last time:  step <- min(step * eta_plus,  step_max);  w <- w - sign(g) step
      sign flipped:            step <- max(step * eta_minus, step_min);  no move, and g is
                               stored as 0 so the next step moves without adapting ("-")
      g = 0 (or stored 0):     step unchanged;                            w <- w - sign(g) step

    Steps start at lr0. Meant for full-batch training (Rprop on noisy minibatch signs misbehaves).
    """

    def __init__(self, lr0=0.01, eta_plus=1.2, eta_minus=0.5, step_min=1e-6, step_max=50):
        self.lr0 = _positive("lr0", lr0)
        if not (eta_plus > 1 and 0 < eta_minus < 1):
            raise ValueError(
                f"need eta_plus > 1 and 0 < eta_minus < 1; given {eta_plus!r}, {eta_minus!r}"
            )
        if not (0 < step_min <= lr0 <= step_max):
            raise ValueError(
                f"need 0 < step_min <= lr0 <= step_max; given {step_min!r}, {lr0!r}, {step_max!r}"
            )
        self.eta_plus, self.eta_minus = float(eta_plus), float(eta_minus)
        self.step_min, self.step_max = float(step_min), float(step_max)
        self.steps = self.prev_grads = None

    def step(self, params, grads):
        _check(params, grads)
        if self.steps is None:
            self.steps = [np.full_like(p, self.lr0) for p in params]
            self.prev_grads = [np.zeros_like(p) for p in params]
        for p, g, step, g_prev in zip(params, grads, self.steps, self.prev_grads):
            agree = g * g_prev
            step[agree > 0] = np.minimum(step[agree > 0] * self.eta_plus, self.step_max)
            step[agree < 0] = np.maximum(step[agree < 0] * self.eta_minus, self.step_min)
            g_now = np.where(agree < 0, 0, g)
            p -= np.sign(g_now) * step
            g_prev[...] = g_now


class Quickprop:
    """Quickprop (Fahlman 1988): treat each weight's error curve as a parabola through the last
    two slopes and jump to its minimum (a secant step on dE/dw):

        dw(t) = g(t) / (g(t-1) - g(t)) * dw(t-1)

    Guards: |dw(t)| <= mu |dw(t-1)| (maximum growth factor mu); when the secant would divide by
    ~0, point uphill, or grow by more than mu, the step is mu * dw(t-1). A weight with no previous
    step (the first step, or after dw = 0) takes a gradient step dw = -lr g. This is the plain
    secant rule, without Fahlman's extra gradient term, so on a quadratic it lands on the minimum.
    """

    def __init__(self, lr, mu=1.75):
        self.lr = _positive("lr", lr)
        self.mu = _positive("mu", mu)
        self.prev_steps = self.prev_grads = None

    def step(self, params, grads):
        _check(params, grads)
        if self.prev_steps is None:
            self.prev_steps = [np.zeros_like(p) for p in params]
            self.prev_grads = [np.zeros_like(p) for p in params]
        mu = self.mu
        for p, g, dw_prev, g_prev in zip(params, grads, self.prev_steps, self.prev_grads):
            denom = g_prev - g
            growing = (g * g_prev > 0) & (np.abs(g) >= np.abs(g_prev))  # parabola opens down
            too_big = growing | (np.abs(g) >= mu * np.abs(denom))  # includes denom == 0
            ratio = np.where(too_big, mu, g / np.where(too_big, 1, denom))
            ratio = np.where(g == 0, 0, ratio)
            dw = np.where(dw_prev == 0, -self.lr * g, ratio * dw_prev)
            p += dw
            dw_prev[...] = dw
            g_prev[...] = g
