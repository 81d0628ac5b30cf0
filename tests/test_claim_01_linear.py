"""Claim 1: a linear layer's weight update is exactly an input-dependent output shift.

docs/02-weight-updates-as-shifts.md eqs. (2.1)-(2.4); ministeer/theory/linear.py.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import PINV, complement, orthonormal
from strategies import random_params, configs, seeds
from tolerances import EXACT
from ministeer.model import linear
from ministeer.theory import linear as lin
from ministeer.tree import named_leaves

pytestmark = pytest.mark.claim(1)
dims = st.integers(1, 12)


@given(configs(), seeds, st.integers(1, 6))
def test_update_is_output_shift_for_every_model_linear(cfg, seed, n):
    """eq. (2.1) on every weight matrix of a real model, through model.linear (biases included)."""
    rng = np.random.default_rng(seed)
    params = random_params(cfg, seed % 2**31)
    for name, W in named_leaves(params):
        if not name.endswith("proj.weight"):
            continue
        bias = dict(named_leaves(params)).get(name[:-len("weight")] + "bias")
        p = {"weight": W} if bias is None else {"weight": W, "bias": bias}
        dW, x = rng.normal(size=W.shape), rng.normal(size=(n, W.shape[1]))
        updated = linear(x, {**p, "weight": W + dW})
        np.testing.assert_allclose(updated, linear(x, p) + lin.output_shift(dW, x), **EXACT)


@given(seeds, dims, dims, st.integers(1, 4), st.integers(1, 20))
def test_lora_shift_has_rank_at_most_r(seed, d_out, d_in, r, n):
    """eq. (2.2): shifts of dW = s B A span <= r dimensions, exactly min(r, d_out, d_in, n) generically."""
    rng = np.random.default_rng(seed)
    B, A = rng.normal(size=(d_out, r)), rng.normal(size=(r, d_in))
    xs = rng.normal(size=(n, d_in))
    rank = lin.shift_rank(lin.lora_update(B, A, scale=2.0), xs)
    assert rank == min(r, d_out, d_in, n)


@given(seeds, dims, dims, st.integers(1, 12), st.integers(1, 8))
def test_input_side_shift_exact_when_col_dW_in_col_W(seed, d_out, d_in, k, n):
    """eq. (2.3): dW = W C has col(dW) inside col(W), and W (W^+ dW x) = dW x."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d_out, d_in))
    s = np.linalg.svd(W, compute_uv=False)
    assume(s[-1] > 1e-4 * s[0])
    dW = W @ rng.normal(size=(d_in, k)) @ rng.normal(size=(k, d_in))
    x = rng.normal(size=(n, d_in))
    dx = lin.input_side_shift(W, dW, x)
    np.testing.assert_allclose(dx @ W.T, lin.output_shift(dW, x), **PINV)
    assert lin.column_space_gap(W, dW) <= 1e-8 * np.linalg.norm(dW)


@given(seeds, st.integers(2, 12), st.integers(1, 12), st.integers(1, 8))
def test_input_side_residual_is_the_part_outside_col_W(seed, d_out, d_in, n):
    """eq. (2.4), negative case: W of rank k < d_out and dW = W C + Q_perp E.

    The input-side residual is exactly Q_perp E x (so bounded away from zero by ||E x||),
    and no input shift does better (least squares agrees)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(d_out, d_in + 1)))
    Q = orthonormal(rng, d_out, k)
    W = Q @ rng.normal(size=(k, d_in))  # col(W) = span(Q)
    assume(np.linalg.matrix_rank(W) == k)
    s = np.linalg.svd(W, compute_uv=False)
    assume(s[k - 1] > 1e-4 * s[0])
    Qp = complement(Q)
    E = rng.normal(size=(Qp.shape[1], d_in))
    dW = W @ rng.normal(size=(d_in, d_in)) + Qp @ E
    x = rng.normal(size=(n, d_in))
    residual = lin.input_side_residual(W, dW, x)
    np.testing.assert_allclose(residual, (x @ E.T) @ Qp.T, **PINV)
    best = np.linalg.lstsq(W, (x @ dW.T).T, rcond=None)[0]  # [d_in, n]
    np.testing.assert_allclose(np.linalg.norm(W @ best - (x @ dW.T).T), np.linalg.norm(residual), **PINV)
    assert np.linalg.norm(residual) >= 0.999 * np.linalg.norm(x @ E.T) > 0
    assert lin.column_space_gap(W, dW) == pytest.approx(np.linalg.norm(E), rel=1e-8)
