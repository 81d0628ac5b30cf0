"""The optional numexpr paths in ``ops`` compute what the plain NumPy paths compute.

``ops.FUSED`` names the primitives that take their numexpr path when numexpr is installed
(the ``fast`` extra; the ``test`` extra installs it so CI runs these). Each test turns one
primitive's fused path on and compares it with the plain path, value and every VJP, at
1e-12 in float64 (``tolerances.EXACT``: both sides are short chains of the same O(1)
operations, a few ulps apart), and checks that float32 stays float32.
"""
import numpy as np
import pytest
from autograd import grad
from hypothesis import given

from ministeer import ops
from strategies import seeds
from test_ops import _call, _inputs
from tolerances import EXACT

pytestmark = pytest.mark.skipif(ops._numexpr is None, reason="numexpr not installed (pip install -e '.[fast]') "
                                "or MINISTEER_NUMEXPR=0")
PRIMITIVES = [name for name in ops.FUSABLE if name in ops.PRIMITIVES]  # the rest: adamw, tests/test_adamw.py


def _value_and_vjps(name, diff, const, probe):
    fn = ops.PRIMITIVES[name][0]
    def scalar(a, i):
        args = list(diff)
        args[i] = a
        return np.sum(_call(fn, args, const, name) * probe)
    return [_call(fn, diff, const, name)] + [grad(scalar)(diff[i], i) for i in range(len(diff))]


def _counting_ne(monkeypatch):
    """Count calls of ops._ne, so a test knows the fused path really ran."""
    calls, real = [], ops._ne
    monkeypatch.setattr(ops, "_ne", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    return calls


@pytest.mark.parametrize("name", PRIMITIVES)
@given(seed=seeds)
def test_fused_path_matches_plain_path(name, seed):
    """Rejects a fused expression with a dropped term, a wrong sign or a wrong constant
    (each is off by ~1e-2 or more), and a fused path that never runs."""
    rng = np.random.default_rng(seed)
    diff, const = _inputs(name, rng)
    probe = rng.normal(size=np.shape(_call(ops.PRIMITIVES[name][0], diff, const, name)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ops, "FUSED", set())
        plain = _value_and_vjps(name, diff, const, probe)
        mp.setattr(ops, "FUSED", {name})
        calls = _counting_ne(mp)
        fused = _value_and_vjps(name, diff, const, probe)
    assert calls, f"{name}: the numexpr path was never taken"
    for i, (f, p) in enumerate(zip(fused, plain, strict=True)):
        np.testing.assert_allclose(f, p, err_msg=f"{name}: {'value' if i == 0 else f'VJP {i - 1}'}", **EXACT)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_fused_path_keeps_float32(name, monkeypatch):
    """Rejects a float constant written as a literal in the expression (numexpr reads it as a
    double and promotes the whole float32 expression to float64)."""
    rng = np.random.default_rng(0)
    diff, const = _inputs(name, rng, np.float32)
    probe = np.ones(np.shape(_call(ops.PRIMITIVES[name][0], diff, const, name)), np.float32)
    monkeypatch.setattr(ops, "FUSED", {name})
    for i, out in enumerate(_value_and_vjps(name, diff, const, probe)):
        assert out.dtype == np.float32, f"{name}: {'value' if i == 0 else f'VJP {i - 1}'} is {out.dtype}"


def test_non_numpy_arrays_take_the_plain_path(monkeypatch):
    """numexpr is CPU-only: a GPU-style array must never reach it (rejects a missing type check)."""
    from ministeer.backend import fake
    monkeypatch.setattr(ops, "FUSED", set(ops.FUSABLE))
    assert ops._fused("gelu", np.ones(3))
    assert not ops._fused("gelu", fake.FakeArray(np.ones(3)))
