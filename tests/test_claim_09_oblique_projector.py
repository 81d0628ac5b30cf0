"""Claim 9: post-block steering contains linear post-MLP steering when skip and MLP subspaces
meet only in {0}; when they overlap, no function of the block output can do it.

docs/04-where-to-steer.md eqs. (4.2), (4.3); ministeer/theory/where.py.

Rejects: the orthogonal projector onto Y in place of the oblique one (it keeps part of
s whenever S is not orthogonal to Y: ``test_orthogonal_projector_does_not_separate``), and
a projector along the wrong subspace (P S != 0).
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from claim_helpers import PINV
from strategies import seeds
from ministeer.theory import fitting
from ministeer.theory.where import oblique_projector

pytestmark = pytest.mark.claim(9)


@given(seeds, st.integers(2, 12), st.data())
def test_oblique_projector_recovers_the_mlp_summand(seed, d, data):
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, d - 1))
    j = data.draw(st.integers(1, d - k))
    Y, S = rng.normal(size=(d, k)), rng.normal(size=(d, j))
    assume(np.linalg.cond(np.concatenate([Y, S], 1)) < 1e4)
    P = oblique_projector(Y, S)
    np.testing.assert_allclose(P @ Y, Y, **PINV)
    np.testing.assert_allclose(P @ S, 0 * S, **PINV)
    np.testing.assert_allclose(P @ P, P, **PINV)
    r = data.draw(st.integers(1, d))
    A = rng.normal(size=(d, r)) @ rng.normal(size=(r, d))  # a rank-r linear post-MLP steer
    n = 7
    y, s = rng.normal(size=(n, k)) @ Y.T, rng.normal(size=(n, j)) @ S.T
    np.testing.assert_allclose((s + y) @ (A @ P).T, y @ A.T, **PINV)


@given(seeds, st.integers(2, 12), st.data())
def test_orthogonal_projector_does_not_separate(seed, d, data):
    """The counterexample that makes eq. (4.2) need the *oblique* projector: with S not
    orthogonal to Y, the orthogonal projector Pi_Y keeps Pi_Y s != 0, so A Pi_Y (s + y) != A y."""
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, d - 1))
    Y, S = rng.normal(size=(d, k)), rng.normal(size=(d, 1))
    assume(np.linalg.cond(np.concatenate([Y, S], 1)) < 1e4)
    Pi = Y @ np.linalg.pinv(Y)
    s = S[:, 0]
    assume(np.linalg.norm(Pi @ s) > 1e-3 * np.linalg.norm(s))  # S not orthogonal to Y
    A = rng.normal(size=(d, d))
    P = oblique_projector(Y, S)
    assert np.linalg.norm(A @ Pi @ s) > 1e-6 * np.linalg.norm(A) * np.linalg.norm(s)
    np.testing.assert_allclose(A @ P @ s, 0 * s, **PINV)


@given(seeds, st.integers(2, 10), st.integers(4, 12))
def test_overlapping_subspaces_defeat_every_post_block_steer(seed, d, n):
    """S and Y share a direction u. The block outputs h = c u arise both as a skip part (target 0)
    and as an MLP part (target c A u): any function of h misses by >= ||c A u|| / sqrt(2) per pair,
    and the best linear fit obeys the bound."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    A = rng.normal(size=(d, d))
    c = rng.normal(size=n)
    h = np.concatenate([np.outer(c, u), np.outer(c, u)])  # the same inputs twice
    targets = np.concatenate([np.zeros((n, d)), np.outer(c, A @ u)])
    bound = 0.5 * float(np.sum(np.outer(c, A @ u) ** 2))  # sum over pairs of ||a - b||^2 / 2
    assert bound > 0
    assert fitting.fit_affine(h, targets)[2] >= bound * (1 - 1e-9)
    with pytest.raises(ValueError, match="intersect"):
        oblique_projector(np.stack([u, rng.normal(size=d)], 1), np.stack([u], 1))
