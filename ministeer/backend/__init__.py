"""The array namespace: NumPy by default, CuPy by one switch.

Every other module does its math through two names exported here:

* ``xp``  -- the *differentiable* namespace. On NumPy it is ``autograd.numpy``,
  so ``autograd.grad`` traces it. On CuPy it is a small namespace of primitives
  whose VJPs are written against CuPy itself (``backend/namespace.py``).
* ``raw`` -- the plain array module (``numpy`` or ``cupy``). Use it for
  constants (masks, one-hots) and inside hand-written VJPs, never on traced values.

Both are live proxies: they look up the active backend on every attribute
access, so ``from ministeer.backend import xp`` keeps working after a switch.

Switch with ``set_backend("cupy")``, ``with use_backend("cupy"): ...`` or the
environment variable ``MINISTEER_BACKEND=cupy``. Host <-> device copies happen
only in ``to_numpy`` and ``from_numpy``.
"""
import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable

import autograd.numpy as _anp
import numpy as _np


@dataclass(frozen=True)
class Backend:
    name: str
    xp: Any  # differentiable namespace
    raw: Any  # plain array module
    array_type: type  # the concrete array class this backend computes on
    to_numpy: Callable  # device array -> host numpy array (the only D->H copy)
    from_numpy: Callable  # host array -> device array (the only H->D copy)


def _numpy_backend():
    return Backend("numpy", _anp, _np, _np.ndarray, _np.asarray, _np.asarray)


def _cupy_backend():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # ImportError, or CUDA present but no device
        raise RuntimeError(
            f"the 'cupy' backend needs CuPy and a CUDA device ({type(err).__name__}: {err}). "
            'Install it with: pip install -e ".[gpu]"') from err
    return make_backend("cupy", cupy, cupy.ndarray, to_numpy=cupy.asnumpy, from_numpy=cupy.asarray)


def make_backend(name, raw_module, array_type, to_numpy, from_numpy):
    """A ``Backend`` computing on ``raw_module`` (CuPy, or the stand-in ``backend/fake.py``)."""
    from .namespace import make_namespace, register_array_type  # only when a GPU-style backend is asked for
    ns = make_namespace(raw_module)
    register_array_type(ns, raw_module, array_type)
    return Backend(name, ns, raw_module, array_type, to_numpy, from_numpy)


# Factories for the backends we know by name. A test can register a stand-in
# (``backend/fake.py``) without touching any other module.
BACKENDS = {"numpy": _numpy_backend, "cupy": _cupy_backend}
_cache = {}
_active = None


def get_backend(name=None) -> Backend:
    """The active backend, or the one called ``name`` (built once, then cached)."""
    if name is None:
        if _active is None:
            set_backend(os.environ.get("MINISTEER_BACKEND", "numpy"))
        return _active
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r}; valid backends: {sorted(BACKENDS)}")
    if name not in _cache:
        _cache[name] = BACKENDS[name]()
    return _cache[name]


def set_backend(name: str) -> Backend:
    """Make ``name`` ("numpy" or "cupy") the backend every module computes on."""
    global _active
    _active = get_backend(name)
    return _active


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("cupy"): ...`` runs the block on another backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield _active
    finally:
        set_backend(previous.name)


class _Proxy:
    """Forwards attribute access to one field of the active backend."""

    def __init__(self, field):
        self._field = field

    def __getattr__(self, attr):
        return getattr(getattr(get_backend(), self._field), attr)

    def __repr__(self):
        return f"<ministeer.backend.{self._field} -> {get_backend().name}>"


xp = _Proxy("xp")
raw = _Proxy("raw")


def to_numpy(x):
    """Copy an array from the active backend to the host (a no-op on NumPy)."""
    return get_backend().to_numpy(x)


def from_numpy(x, dtype=None):
    """Copy a host array onto the active backend, optionally casting it."""
    x = _np.asarray(x) if dtype is None else _np.asarray(x, dtype=dtype)
    return get_backend().from_numpy(x)


def as_backend_array(x):
    """``x`` if it already lives on the active backend, else an explicit ``from_numpy`` copy."""
    return x if isinstance(x, get_backend().array_type) else from_numpy(x)

