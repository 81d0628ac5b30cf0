"""Claim 6: a constant steering vector matches dW x only if the inputs vary inside ker dW;
richer steers (affine, rank-r) have residuals the theory predicts exactly.

docs/05-parameterizations.md eqs. (5.1)-(5.4); ministeer/theory/fitting.py.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from claim_helpers import complement, orthonormal
from strategies import seeds
from ministeer.theory import fitting

pytestmark = pytest.mark.claim(6)
dims = st.integers(2, 10)


def _update_with_kernel(rng, d_out, d_in, k):
    """dW of rank d_in - k whose kernel is span(K), K: [d_in, k] orthonormal."""
    K = orthonormal(rng, d_in, k)
    return rng.normal(size=(d_out, d_in)) @ (np.eye(d_in) - K @ K.T), K


@given(seeds, dims, dims, st.integers(2, 20))
def test_closed_form_is_the_least_squares_constant(seed, d_out, d_in, n):
    """eq. (5.1): v = dW xbar equals the least-squares fit, and the residual is sum ||dW (x_i - xbar)||^2."""
    rng = np.random.default_rng(seed)
    dW, xs = rng.normal(size=(d_out, d_in)), rng.normal(size=(n, d_in))
    v, residual = fitting.best_constant_for_linear(dW, xs)
    shifts = xs @ dW.T
    lstsq = np.linalg.lstsq(np.ones((n, 1)), shifts, rcond=None)[0][0]
    np.testing.assert_allclose(v, lstsq, rtol=1e-10, atol=1e-10)
    assert residual == pytest.approx(float(np.sum((shifts - v) ** 2)), rel=1e-10)
    assert residual == pytest.approx(fitting.fit_constant(shifts)[1], rel=1e-10)
    for _ in range(3):  # no other constant does better
        other = v + rng.normal(size=v.shape)
        assert float(np.sum((shifts - other) ** 2)) > residual


@given(seeds, dims, dims, st.integers(2, 20), st.booleans())
def test_residual_zero_iff_inputs_vary_only_in_kernel(seed, d_out, d_in, n, inside):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, d_in))
    dW, K = _update_with_kernel(rng, d_out, d_in, k)
    x0 = rng.normal(size=d_in)
    if inside:
        xs = x0 + rng.normal(size=(n, k)) @ K.T
        assert fitting.best_constant_for_linear(dW, xs)[1] <= 1e-20 * (1 + np.sum(xs ** 2)) * np.sum(dW ** 2)
    else:  # a component e_i outside the kernel: the residual is exactly sum ||dW (e_i - ebar)||^2 > 0
        Kp = complement(K)
        e = rng.normal(size=(n, d_in - k)) @ Kp.T
        xs = x0 + rng.normal(size=(n, k)) @ K.T + e
        expected = float(np.sum(((e - e.mean(0)) @ dW.T) ** 2))
        residual = fitting.best_constant_for_linear(dW, xs)[1]
        assert residual == pytest.approx(expected, rel=1e-8)
        if d_out >= d_in - k:  # dW is injective on the complement of its kernel: bounded below
            s_min = np.linalg.svd(dW, compute_uv=False)[d_in - k - 1]
            assert residual >= s_min ** 2 * float(np.sum((e - e.mean(0)) ** 2)) * (1 - 1e-9)
            assert residual > 0


@given(seeds, dims, dims, st.integers(1, 6), st.integers(12, 30))
def test_affine_exact_and_rank_r_residual_is_the_spectral_tail(seed, d_out, d_in, r, n):
    """eqs. (5.3), (5.4): shifts dW x_i are fitted exactly by an affine map; the best rank-r
    map leaves exactly the squared singular values of the shift matrix beyond r."""
    rng = np.random.default_rng(seed)
    dW, xs = rng.normal(size=(d_out, d_in)), rng.normal(size=(n, d_in))
    shifts = xs @ dW.T
    M, b, residual = fitting.fit_affine(xs, shifts)
    assert residual <= 1e-18 * np.sum(shifts ** 2)
    M_r, _, res_r = fitting.fit_rank_r(xs, shifts, r)
    assert np.linalg.matrix_rank(M_r, tol=1e-9 * np.linalg.norm(M_r)) <= r
    tail = np.linalg.svd(shifts, compute_uv=False)[r:]
    assert res_r == pytest.approx(float(np.sum(tail ** 2)), rel=1e-8, abs=1e-18 * np.sum(shifts ** 2))
    if r < min(d_out, d_in):  # negative: a rank-r steer cannot replicate a higher-rank update
        assert res_r >= float(tail[0] ** 2) * (1 - 1e-9) and tail[0] > 1e-9 * np.linalg.norm(shifts)
