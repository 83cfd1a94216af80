"""The data format between the student's kernel and the trusted evaluator (used on both sides).

A value crosses as JSON, never as pickle or code:

    None, bool, int, float, str        as themselves (floats may be NaN / Infinity)
    list                               a JSON list
    {"$": "tuple", "v": [...]}         tuple
    {"$": "dict", "v": [[k, v], ...]}  dict (any data keys)
    {"$": "complex", "v": [re, im]}    complex
    {"$": "nd", "dtype": "<f8", "shape": [2, 3], "b64": "..."}
                                       NumPy array of bool/int/uint/float/complex dtype
    {"$": "sympy", "v": "<srepr>"}     SymPy object, rebuilt by a whitelist reader (no eval)
    {"$": "ref", "id": 3, "kind": "function" | "object", "label": "f"}
                                       anything else: a handle to an object that stays in the
                                       kernel (functions, instances of the student's classes)

`encode` runs in the kernel (it may meet anything); `decode` runs in the evaluator and trusts
nothing: it checks every tag, type, dtype, shape and size, and raises WireError with a reason.
This module imports only the standard library (NumPy and SymPy are imported when needed), so
the sandbox can use it as a plain file.
"""

import base64
import json
import math

MAX_DEPTH = 24  # nesting of lists/tuples/dicts
MAX_ITEMS = 200_000  # elements of all containers in one value
MAX_BYTES = 64 << 20  # raw array bytes plus text in one value
ARRAY_KINDS = "biufc"


class WireError(ValueError):
    """A value could not be sent or read (too big, too deep, not data)."""


def _enter(budget, depth):
    """The budget [elements, bytes] left for one value (a new one at the top), less one element."""
    budget = budget if budget is not None else [MAX_ITEMS, MAX_BYTES]
    if depth > MAX_DEPTH:
        raise WireError("nested more than %d levels deep" % MAX_DEPTH)
    budget[0] -= 1
    if budget[0] < 0:
        raise WireError("more than %d elements" % MAX_ITEMS)
    return budget


def _plain(value, budget):
    """True for a JSON scalar (None, bool, int, float, str: the same on both sides); a string's
    length is charged to the budget."""
    t = type(value)
    if t is str:
        _spend(budget, len(value))
        return True
    return value is None or t is bool or t is int or t is float


def _spend(budget, nbytes):
    budget[1] -= nbytes
    if budget[1] < 0:
        raise WireError("more than %d MB" % (MAX_BYTES >> 20))


# ------------------------------------------------------------------------------------------------
# encoding (kernel side; also used by the evaluator for call arguments)
# ------------------------------------------------------------------------------------------------


def encode(value, make_ref=None, _depth=0, _budget=None):
    """JSON-able form of value. make_ref(obj) -> handle dict for non-data objects (None: refuse)."""
    budget = _enter(_budget, _depth)
    if _plain(value, budget):
        return value
    t = type(value)
    if t is complex:
        return {"$": "complex", "v": [value.real, value.imag]}
    if t is list:
        return [encode(v, make_ref, _depth + 1, budget) for v in value]
    if t is tuple:
        return {"$": "tuple", "v": [encode(v, make_ref, _depth + 1, budget) for v in value]}
    if t is dict:
        return {
            "$": "dict",
            "v": [
                [encode(k, make_ref, _depth + 1, budget), encode(v, make_ref, _depth + 1, budget)]
                for k, v in value.items()
            ],
        }
    mod = getattr(t, "__module__", "") or ""
    if mod.startswith("numpy"):
        import numpy as np

        if isinstance(value, np.generic) and value.dtype.kind in ARRAY_KINDS:
            return encode(value.item(), make_ref, _depth, budget)
        if t is np.ndarray and value.dtype.kind in ARRAY_KINDS:
            arr = np.ascontiguousarray(value)
            _spend(budget, arr.nbytes)
            return {
                "$": "nd",
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "b64": base64.b64encode(arr.tobytes()).decode(),
            }
    if mod.startswith("sympy"):
        import sympy

        if isinstance(value, (sympy.Basic, sympy.MatrixBase)):
            text = sympy.srepr(value)
            _spend(budget, len(text))
            return {"$": "sympy", "v": text}
    if make_ref is None:
        raise WireError("a %s is not data" % t.__name__)
    return make_ref(value)


def dumps(value, make_ref=None):
    return json.dumps(encode(value, make_ref), separators=(",", ":"))


# ------------------------------------------------------------------------------------------------
# decoding (evaluator side: the input is untrusted)
# ------------------------------------------------------------------------------------------------


def decode(obj, make_remote=None, read_sympy=None, _depth=0, _budget=None):
    """The value of a JSON-able form made by encode. Untrusted input: WireError on anything odd.

    make_remote(handle dict) -> proxy object (None: handles are refused).
    read_sympy(text) -> SymPy object (None: SymPy values are refused).
    """
    budget = _enter(_budget, _depth)
    if _plain(obj, budget):
        return obj
    t = type(obj)
    if t is list:
        return [decode(v, make_remote, read_sympy, _depth + 1, budget) for v in obj]
    if t is not dict:
        raise WireError("unexpected JSON %s" % t.__name__)
    tag = obj.get("$")
    if tag == "tuple":
        return tuple(decode(v, make_remote, read_sympy, _depth + 1, budget) for v in _list(obj))
    if tag == "dict":
        out = {}
        for pair in _list(obj):
            if type(pair) is not list or len(pair) != 2:
                raise WireError("malformed dict entry")
            key = decode(pair[0], None, None, _depth + 1, budget)
            try:
                hash(key)
            except TypeError:
                raise WireError("unhashable dict key") from None
            out[key] = decode(pair[1], make_remote, read_sympy, _depth + 1, budget)
        return out
    if tag == "complex":
        v = _list(obj)
        if len(v) != 2 or not all(type(x) in (int, float) for x in v):
            raise WireError("malformed complex number")
        return complex(v[0], v[1])
    if tag == "nd":
        return _decode_array(obj, budget)
    if tag == "sympy":
        text = obj.get("v")
        if type(text) is not str:
            raise WireError("malformed SymPy value")
        _spend(budget, len(text))
        if read_sympy is None:
            raise WireError("a SymPy value is not expected here")
        return read_sympy(text)
    if tag == "ref":
        if make_remote is None:
            raise WireError("an object handle is not expected here")
        if type(obj.get("id")) is not int or obj.get("kind") not in ("function", "object"):
            raise WireError("malformed object handle")
        label = obj.get("label")
        return make_remote(obj["id"], obj["kind"], label[:80] if type(label) is str else "?")
    raise WireError("unknown tag %r" % (tag if type(tag) is str else type(tag).__name__))


def _list(obj):
    v = obj.get("v")
    if type(v) is not list:
        raise WireError("malformed %s" % obj.get("$"))
    return v


def _decode_array(obj, budget):
    import numpy as np

    dtype, shape, b64 = obj.get("dtype"), obj.get("shape"), obj.get("b64")
    if type(dtype) is not str or type(shape) is not list or type(b64) is not str:
        raise WireError("malformed array")
    if len(shape) > 32 or not all(type(n) is int and 0 <= n <= MAX_BYTES for n in shape):
        raise WireError("malformed array shape")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise WireError("unknown array dtype %r" % dtype[:20]) from None
    if dt.kind not in ARRAY_KINDS or dt.hasobject or dt.fields is not None:
        raise WireError("array dtype %s is not numeric" % dt)
    count = math.prod(shape)
    if count * dt.itemsize > MAX_BYTES or len(b64) > 4 * (MAX_BYTES // 3 + 2):
        raise WireError("array over %d MB" % (MAX_BYTES >> 20))
    _spend(budget, count * dt.itemsize)
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raise WireError("malformed array bytes") from None
    if len(raw) != count * dt.itemsize:
        raise WireError("array bytes do not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def loads(text, make_remote=None, read_sympy=None, max_bytes=MAX_BYTES * 2):
    """decode(json.loads(text)) with a size cap; WireError on anything malformed."""
    if type(text) is not str:
        raise WireError("reply is not text")
    if len(text) > max_bytes:
        raise WireError("reply over %d MB" % (max_bytes >> 20))
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise WireError("reply is not valid JSON") from None
    try:
        return decode(obj, make_remote, read_sympy)
    except RecursionError:
        raise WireError("reply nested too deeply") from None
