"""Speed of bpkit's reference backprop: prints a table (a measurement, not a test).

    python benchmarks/bench_bpkit.py [--rounds 30] [--quick]

1. One training step (forward + backward + SGD update) of a 784-256-256-10 MLP (relu, relu,
   identity; loss "mse"), batch 128, float64 and float32: bpkit vs PyTorch CPU (torch.nn + SGD)
   with the same weights, data and thread count. Goal: bpkit / torch <= 1.0x.
2. The same bpkit step vs its GEMMs alone (3 per layer: X W^T, Delta^T X, Delta W, into
   preallocated outputs). Goal: <= 1.25x. bpkit skips the first layer's Delta W (dE/dX is not
   needed), so it runs 8 of the 9 GEMMs; the table shows both baselines.
3. bpkit.unitwise.backprop (Python loops) vs bpkit.backprop (matrix form) on a small net.

Timings are medians over rounds; within a round the contenders run interleaved, in a rotating
order. PyTorch is needed for part 1 only (pip install torch==2.13.0; CPU build).
"""

import argparse
import ctypes
import glob
import os
import platform
import statistics
import time

import numpy as np

import bpkit
from bpkit.network import _check_net, _trace, interleave

SIZES, ACTS, BATCH, LR = [784, 256, 256, 10], ["relu", "relu", "identity"], 128, 1e-3


def _openblas():
    """NumPy's bundled OpenBLAS library and its symbol prefix, or (None, None)."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            if hasattr(lib, f"{prefix}_get_num_threads{suffix}"):
                return lib, (prefix, suffix)
    return None, None


def numpy_threads(set_to=None):
    """OpenBLAS thread count used by NumPy (after setting it to set_to, if given)."""
    lib, names = _openblas()
    if lib is None:
        return os.cpu_count()
    prefix, suffix = names
    if set_to:
        getattr(lib, f"{prefix}_set_num_threads{suffix}")(int(set_to))
    return int(getattr(lib, f"{prefix}_get_num_threads{suffix}")())


def median_times(contenders, rounds, reps):
    """{name: (median, best) seconds per call}; each round runs every contender `reps` times,
    interleaved. The best (minimum) is the least disturbed by other load on the machine."""
    names = list(contenders)
    samples = {n: [] for n in names}
    for fn in contenders.values():  # warm up
        for _ in range(3):
            fn()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            fn = contenders[n]
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples[n].append(time.perf_counter() - t0)
    return {n: (statistics.median(s), min(s)) for n, s in samples.items()}


def make_problem(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(BATCH, SIZES[0])).astype(dtype)
    T = rng.normal(size=(BATCH, SIZES[-1])).astype(dtype)
    net = bpkit.MLP(SIZES, ACTS, seed=0, init="he", dtype=dtype)
    return net, X, T


def bpkit_steps(net, X, T):
    """Two bpkit steps: through the public API (validates its input) and the way bpkit.train's
    inner loop runs (input validated once, before the loop)."""
    opt = bpkit.optim.GradientDescent(LR)
    params = net.params()
    _, _, acts, _, _ = _check_net(net.weights, net.biases, net.activations, X, T)

    def public():
        E, dW, db = net.backprop(X, T, "mse")
        opt.step(params, interleave(dW, db))

    def inner():
        tr = _trace(net.weights, net.biases, acts, X, T, "mse")
        opt.step(params, interleave(tr.dW, tr.db))

    return public, inner


def gemm_only(net, X):
    """The 3 GEMMs per layer of one step, on preallocated outputs (the floor for any NumPy backprop)."""
    N = X.shape[0]
    rng = np.random.default_rng(2)
    ins, outs = [X], []
    for W in net.weights:
        outs.append(np.empty((N, W.shape[0]), X.dtype))
        ins.append(rng.normal(size=(N, W.shape[0])).astype(X.dtype))
    dWs = [np.empty_like(W) for W in net.weights]
    deltas = [rng.normal(size=(N, W.shape[0])).astype(X.dtype) for W in net.weights]
    dXs = [np.empty((N, W.shape[1]), X.dtype) for W in net.weights]

    def run(first_dX=True):
        for l, W in enumerate(net.weights):
            np.matmul(ins[l], W.T, out=outs[l])  # A = X W^T
        for l in reversed(range(len(net.weights))):
            np.matmul(deltas[l].T, ins[l], out=dWs[l])  # dE/dW = Delta^T X
            if l > 0 or first_dX:
                np.matmul(deltas[l], net.weights[l], out=dXs[l])  # dE/dX = Delta W

    return (lambda: run(True)), (lambda: run(False))


def torch_step(net, X, T, threads):
    import torch

    torch.set_num_threads(threads)
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[X.dtype.type]
    layers = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if ACTS[l] == "relu":
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((model(Xt) - Tt) ** 2).sum() / Xt.shape[0]  # bpkit "mse"
        loss.backward()
        opt.step()

    return model, step


def check_same_gradients(net, X, T, model):
    E, dW, db = net.backprop(X, T, "mse")
    model.zero_grad()
    import torch

    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    loss = 0.5 * ((model(Xt) - Tt) ** 2).sum() / Xt.shape[0]
    loss.backward()
    lins = [m for m in model if hasattr(m, "weight")]
    err = max(
        np.linalg.norm(dW[l] - lins[l].weight.grad.numpy()) / np.linalg.norm(dW[l])
        for l in range(len(lins))
    )
    return abs(E - loss.item()) / abs(E), err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads for NumPy and torch")
    ap.add_argument("--quick", action="store_true", help="few rounds (smoke run)")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    threads = numpy_threads(set_to=args.threads)
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch = None
        torch_version = "not installed"
    print(
        f"bpkit benchmark: numpy {np.__version__}, torch {torch_version}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, numpy (OpenBLAS) threads {threads}, torch threads set to {threads}"
    )
    print(
        f"MLP {'-'.join(map(str, SIZES))} ({', '.join(ACTS)}), loss mse, batch {BATCH}, SGD lr {LR}; "
        f"medians of {rounds} rounds x {args.reps} calls\n"
    )

    rows = []
    for dtype in (np.float64, np.float32):
        net, X, T = make_problem(dtype)
        public, inner = bpkit_steps(net, X, T)
        gemm9, gemm8 = gemm_only(net, X)
        contenders = {
            "bpkit step (public API)": public,
            "bpkit step (train loop)": inner,
            "GEMMs alone (9)": gemm9,
            "GEMMs bpkit runs (8)": gemm8,
        }
        if torch is not None:
            model, tstep = torch_step(net.copy(), X, T, threads)
            rel_E, rel_dW = check_same_gradients(net, X, T, model)
            contenders["PyTorch step"] = tstep
        t = median_times(contenders, rounds, args.reps)
        name = np.dtype(dtype).name
        if torch is not None:
            print(
                f"[{name}] same start, bpkit vs torch: relative difference of E {rel_E:.1e}, of dW (norm) {rel_dW:.1e}"
            )
        for k, v in t.items():
            rows.append((name, k, v))

        def ratio(a, b, t=t):
            return tuple(x / y for x, y in zip(t[a], t[b]))

        rows.append(
            (
                name,
                "ratio bpkit (public) / 9 GEMMs",
                ratio("bpkit step (public API)", "GEMMs alone (9)"),
            )
        )
        rows.append(
            (
                name,
                "ratio bpkit (train loop) / 9 GEMMs",
                ratio("bpkit step (train loop)", "GEMMs alone (9)"),
            )
        )
        rows.append(
            (
                name,
                "ratio bpkit (train loop) / 8 GEMMs",
                ratio("bpkit step (train loop)", "GEMMs bpkit runs (8)"),
            )
        )
        if torch is not None:
            rows.append(
                (
                    name,
                    "ratio bpkit (public) / PyTorch",
                    ratio("bpkit step (public API)", "PyTorch step"),
                )
            )
            rows.append(
                (
                    name,
                    "ratio bpkit (train loop) / PyTorch",
                    ratio("bpkit step (train loop)", "PyTorch step"),
                )
            )

    # unitwise vs matrix form on a small net
    rng = np.random.default_rng(1)
    small = bpkit.MLP([4, 8, 3], ["tanh", "identity"], seed=1)
    Xs, Ts = rng.normal(size=(16, 4)), rng.normal(size=(16, 3))
    args_s = (small.weights, small.biases, small.activations, Xs, Ts)
    t = median_times(
        {
            "unitwise": lambda: bpkit.unitwise.backprop(*args_s),
            "matrix": lambda: bpkit.backprop(*args_s),
        },
        max(3, rounds // 3),
        3,
    )

    rows.append(("float64", "unitwise backprop, 4-8-3 net, N=16", t["unitwise"]))
    rows.append(("float64", "matrix backprop, same", t["matrix"]))
    rows.append(
        (
            "float64",
            "speedup matrix over unitwise",
            tuple(u / m for u, m in zip(t["unitwise"], t["matrix"])),
        )
    )

    print(f"\n{'dtype':8} {'measurement':38} {'median':>11} {'best':>11}")
    print("-" * 71)
    for name, k, (med, best) in rows:
        if k.startswith(("ratio", "speedup")):
            print(f"{name:8} {k:38} {med:10.2f}x {best:10.2f}x")
        else:
            print(f"{name:8} {k:38} {med * 1e3:8.3f} ms {best * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
