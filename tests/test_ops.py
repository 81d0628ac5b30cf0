"""Each hand-derived primitive against autograd's derivative of its plain composition."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, make_jvp
from hypothesis import given, strategies as st

from ministeer import ops
from strategies import seeds
from tolerances import EXACT


def _inputs(name, rng, dtype=np.float64):
    """Arguments for each primitive: (differentiable args, constant args)."""
    x = lambda *s: rng.normal(size=s).astype(dtype)
    B, T, H, K, dh, d, V = 2, 5, 4, 2, 4, 6, 7
    if name == "rms_norm":
        return [x(B, T, d), x(d)], [1e-5]
    if name == "layer_norm":
        return [x(B, T, d), x(d), x(d)], [1e-5]
    if name in ("gelu", "silu"):
        return [3 * x(B, T, d)], []
    if name == "swiglu":
        return [3 * x(B, T, d), x(B, T, d)], []
    if name == "attention_pattern":
        return [x(B, H, T, dh), x(B, K, T, dh)], [0.5]
    if name == "rope":
        # arbitrary tables, not rope_tables': theirs repeat one half, which would hide a VJP
        # that reads sin's halves the wrong way round
        return [x(B, T, H, dh)], [x(T, 1, dh), x(T, 1, dh)]
    if name == "embedding":
        return [x(V, d)], [rng.integers(0, V, (B, T))]
    if name == "cross_entropy":
        return [x(B * T, V)], [rng.integers(0, V, B * T), (rng.random(B * T) < 0.7).astype(dtype) + 1e-3]
    if name == "orthonormal_rows":  # r < d, so the projection onto the complement is exercised
        return [x(4, d)], []
    raise KeyError(name)


def _call(fn, diff, const, name):
    if name == "embedding":
        return fn(diff[0], *const)
    return fn(*diff, *const)


@pytest.mark.parametrize("name", sorted(ops.PRIMITIVES))
@given(seed=seeds)
def test_primitive_matches_composition(name, seed):
    fast, composed = ops.PRIMITIVES[name]
    rng = np.random.default_rng(seed)
    diff, const = _inputs(name, rng)
    np.testing.assert_allclose(_call(fast, diff, const, name), _call(composed, diff, const, name), **EXACT)
    probe = rng.normal(size=np.shape(_call(fast, diff, const, name)))
    for i in range(len(diff)):
        def scalar(a, f):
            args = list(diff)
            args[i] = a
            return np.sum(_call(f, args, const, name) * probe)
        np.testing.assert_allclose(grad(scalar)(diff[i], fast), grad(scalar)(diff[i], composed),
                                   err_msg=f"VJP of {name} w.r.t. argument {i}", **EXACT)
        tangent = rng.normal(size=diff[i].shape)
        def output(a, f):
            args = list(diff)
            args[i] = a
            return _call(f, args, const, name)
        jf = make_jvp(lambda a: output(a, fast))(diff[i])(tangent)[1]
        jc = make_jvp(lambda a: output(a, composed))(diff[i])(tangent)[1]
        np.testing.assert_allclose(jf, jc, err_msg=f"JVP of {name} w.r.t. argument {i}", **EXACT)


@pytest.mark.parametrize("name", sorted(ops.PRIMITIVES))
def test_float32_stays_float32_through_backward(name):
    """No hidden float64 promotion: the value and every gradient keep the input dtype."""
    rng = np.random.default_rng(0)
    diff, const = _inputs(name, rng, np.float32)
    fast = ops.PRIMITIVES[name][0]
    assert _call(fast, diff, const, name).dtype == np.float32
    for i in range(len(diff)):
        def scalar(a):
            args = list(diff)
            args[i] = a
            return anp.sum(_call(fast, args, const, name))
        assert grad(scalar)(diff[i]).dtype == np.float32, f"gradient of {name} w.r.t. argument {i}"
