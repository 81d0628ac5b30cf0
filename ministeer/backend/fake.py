"""A strict CPU stand-in for CuPy, so a machine without a GPU runs the GPU code path.

``FakeArray`` wraps a NumPy array and behaves like ``cupy.ndarray`` where it matters:

* implicit conversion to NumPy raises ``TypeError`` (``np.asarray(a)``), as in CuPy;
* mixing a host NumPy array into a device operation raises ``TypeError`` (CuPy refuses
  too; we also refuse host *index* arrays, which CuPy would silently copy over);
* reductions and scalar indexing return 0-d arrays, never Python or NumPy scalars;
* ``a.get()`` / ``asnumpy(a)`` copy to the host and ``asarray(host)`` copies to the
  device; each copy is counted in ``TRANSFERS`` ("to_host", "to_device");
* ``float(a)``, ``int(a)``, ``bool(a)``, ``a.item()``, ``a.tolist()``, ``repr(a)`` work as
  in CuPy but are *hidden* device->host syncs: counted as "implicit", and an error
  inside ``count_transfers(strict=True)`` (the traceback then points at the culprit).

The module itself plays the role of ``cupy``: every NumPy function, ufunc and submodule
is available under its NumPy name and runs on the unwrapped arrays (``fakecupy.sum``,
``fakecupy.add.at``, ``fakecupy.linalg.svd``). ``register()`` adds a "fakecupy" entry to
``ministeer.backend.BACKENDS``; ``tests/test_backend.py`` runs the model, its gradients
and training on it and counts the transfers (``docs/performance.md``, "GPU").
"""
import contextlib
import functools
import sys
import types
from collections import Counter

import numpy as np  # the stand-in computes with NumPy underneath, by design

TRANSFERS = Counter()  # "to_device", "to_host", "implicit"
_STRICT = [False]


def _implicit(what):
    if _STRICT[0]:
        raise RuntimeError(f"hidden device->host transfer ({what}) inside count_transfers(strict=True); "
                           "copy explicitly with ministeer.to_numpy, or keep the value on the device")
    TRANSFERS["implicit"] += 1


@contextlib.contextmanager
def count_transfers(strict=False):
    """``with count_transfers() as n: ...`` -- afterwards ``n["to_host"]``, ``n["to_device"]``,
    ``n["implicit"]`` hold the copies made inside the block."""
    before, old, counts = Counter(TRANSFERS), _STRICT[0], Counter()
    _STRICT[0] = strict
    try:
        yield counts
    finally:
        _STRICT[0] = old
        for key in ("to_device", "to_host", "implicit"):
            counts[key] = TRANSFERS[key] - before[key]


def _is_box(x):
    return hasattr(x, "_node") and hasattr(x, "_trace")  # an autograd Box


def _defers(x):
    """True for operands that handle the operation themselves (autograd boxes)."""
    return getattr(type(x), "__array_ufunc__", 0) is None or _is_box(x)


def _unwrap(x):
    if type(x) is FakeArray:
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"a host numpy array (shape {x.shape}) was mixed into a device operation; "
                        "copy it over explicitly with ministeer.from_numpy")
    if _is_box(x):
        raise TypeError("a traced value reached a raw array function; use the differentiable "
                        "namespace xp (or autograd.tracer.getval for a constant)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(r):
    if isinstance(r, (np.ndarray, np.generic)):
        return FakeArray(np.asarray(r))  # a scalar result becomes a 0-d device array, as in CuPy
    if isinstance(r, tuple) and hasattr(r, "_fields"):  # e.g. linalg.svd's SVDResult
        return type(r)(*map(_wrap, r))
    if isinstance(r, (list, tuple)):
        return type(r)(map(_wrap, r))
    return r


def _function(fn):
    @functools.wraps(fn)
    def on_device(*args, **kwargs):
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
    return on_device


class FakeArray:
    """A device array that is really a NumPy array; see the module docstring."""

    __slots__ = ("_a",)
    __array_priority__ = 100.0
    __hash__ = None  # like cupy.ndarray

    def __init__(self, host_array):
        self._a = host_array  # private: make one with fakecupy.asarray (counted) or any op

    # metadata: no transfer
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: FakeArray(self._a.T))

    def __len__(self):
        return len(self._a)

    # explicit and implicit copies to the host
    def get(self):
        TRANSFERS["to_host"] += 1
        return self._a.copy()

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def _host_scalar(self, convert, what):
        _implicit(what)
        return convert(self._a)

    __float__ = lambda self: self._host_scalar(float, "float()")
    __int__ = lambda self: self._host_scalar(int, "int()")
    __bool__ = lambda self: self._host_scalar(bool, "bool()")
    item = lambda self: self._host_scalar(lambda a: a.item(), ".item()")
    tolist = lambda self: self._host_scalar(lambda a: a.tolist(), ".tolist()")
    __repr__ = lambda self: self._host_scalar(lambda a: "fake" + repr(a), "repr()")
    __str__ = lambda self: self._host_scalar(str, "str()")

    # NumPy's dispatch protocols, so np.exp(a) and np.sum(a) run "on the device"
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(_defers(x) for x in inputs):
            return NotImplemented
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    def __array_function__(self, func, types_, args, kwargs):
        if any(_is_box(x) for x in args):
            return NotImplemented
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # indexing
    def __getitem__(self, index):
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index, value):
        self._a[_index(index)] = _unwrap(value)

    def __iter__(self):
        return (FakeArray(row) for row in self._a)

    def __getattr__(self, name):  # methods: a.reshape, a.sum, a.astype, ...
        if name.startswith("_") or name in _HOST_ONLY:
            raise AttributeError(f"FakeArray has no attribute {name!r}")
        attr = getattr(self._a, name)
        return _function(attr) if callable(attr) else _wrap(attr)


_HOST_ONLY = {"tobytes", "tofile", "dump", "dumps", "data", "ctypes", "view", "flat", "base"}


def _index(index):
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, list) for p in parts):
        _implicit("a list index is copied to the device")
    return _unwrap(index)


def _operator(ufunc, reflected=False, inplace=False):
    def op(self, other):
        if _defers(other):
            return NotImplemented
        if inplace:
            ufunc(self._a, _unwrap(other), out=self._a)
            return self
        a, b = (_unwrap(other), self._a) if reflected else (self._a, _unwrap(other))
        return _wrap(ufunc(a, b))
    return op


for _name, _ufunc in dict(add=np.add, sub=np.subtract, mul=np.multiply, truediv=np.true_divide,
                          floordiv=np.floor_divide, mod=np.remainder, pow=np.power, matmul=np.matmul,
                          and_=np.bitwise_and, or_=np.bitwise_or).items():
    _name = _name.rstrip("_")
    setattr(FakeArray, f"__{_name}__", _operator(_ufunc))
    setattr(FakeArray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(FakeArray, f"__i{_name}__", _operator(_ufunc, inplace=True))
for _name, _ufunc in dict(eq=np.equal, ne=np.not_equal, lt=np.less, le=np.less_equal,
                          gt=np.greater, ge=np.greater_equal).items():
    setattr(FakeArray, f"__{_name}__", _operator(_ufunc))
FakeArray.__neg__ = lambda self: FakeArray(-self._a)
FakeArray.__pos__ = lambda self: self
FakeArray.__abs__ = lambda self: FakeArray(abs(self._a))
FakeArray.__invert__ = lambda self: FakeArray(~self._a)

# ---------------------------------------------------------------- the "cupy" module


ndarray = FakeArray


def asarray(x, dtype=None):
    """A device array; copying host data counts as one host->device transfer."""
    if type(x) is FakeArray:
        return x if dtype is None else x.astype(dtype)
    if _is_box(x):
        raise TypeError("asarray on a traced value; it is already on the device")
    TRANSFERS["to_device"] += 1
    return FakeArray(np.array(x, dtype=dtype, copy=True))


array = asarray


def asnumpy(x):
    """A host copy (one device->host transfer); host input passes through."""
    return x.get() if type(x) is FakeArray else np.asarray(x)


class _Ufunc:
    """A NumPy ufunc on device arrays, with ``.at`` for in-place scatter (``add.at``)."""

    def __init__(self, ufunc):
        self._ufunc, self.__name__ = ufunc, ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _wrap(self._ufunc(*_unwrap(args), **_unwrap(kwargs)))

    def at(self, target, indices, *values):
        if type(target) is not FakeArray:
            raise TypeError(f"{self.__name__}.at needs a device array, got {type(target).__name__}")
        self._ufunc.at(target._a, _index(indices), *_unwrap(values))

    def __getattr__(self, name):  # reduce, outer, nin, ...
        attr = getattr(self._ufunc, name)
        return _function(attr) if callable(attr) else attr


class _Module(types.ModuleType):
    """A NumPy submodule (linalg, random, fft) on device arrays."""

    def __init__(self, module):
        super().__init__(f"{__name__}.{module.__name__.split('.')[-1]}")
        self._module = module

    def __getattr__(self, name):
        return _translate(getattr(self._module, name))


def _translate(obj):
    if isinstance(obj, np.ufunc):
        return _Ufunc(obj)
    if isinstance(obj, types.ModuleType):
        return _Module(obj)
    if callable(obj) and not isinstance(obj, type):  # functions; dtypes (np.float64) stay as they are
        return _function(obj)
    return obj


def __getattr__(name):  # module-level: fakecupy.sum, fakecupy.float32, fakecupy.linalg, ...
    if name.startswith("__"):
        raise AttributeError(name)
    obj = _translate(getattr(np, name))
    setattr(sys.modules[__name__], name, obj)  # cached: later lookups skip this function
    return obj


def register():
    """Add the "fakecupy" backend to ``ministeer.backend.BACKENDS`` (idempotent)."""
    from . import BACKENDS, make_backend
    BACKENDS.setdefault("fakecupy", lambda: make_backend(
        "fakecupy", sys.modules[__name__], FakeArray, to_numpy=asnumpy, from_numpy=asarray))
