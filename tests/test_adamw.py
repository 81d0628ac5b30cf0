"""``train.AdamW``: the flat-buffer update is the per-leaf formula (train.1), bit for bit.

The flat update packs the small leaves of one dtype into one buffer (a large leaf gets a
buffer of its own) and runs (train.1) once per buffer. Elementwise arithmetic does not care which buffer an element sits in, so as long as
each element sees the same operations in the same order, the result must be *bitwise*
equal to ``adamw_reference`` applied leaf by leaf. No tolerance: any reordering
(``lr * (a + b)`` as ``lr * a + lr * b``, ``(1 - b2) * g * g`` as ``(1 - b2) * (g * g)``)
changes the last bit of some elements of a few thousand.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ministeer import train
from ministeer.train import AdamW, adamw_reference
from ministeer.tree import named_leaves, tree_map
from strategies import seeds


def _tree(rng):
    """Leaves of both float dtypes, odd shapes and a 0-d leaf, in two top-level groups."""
    f32 = lambda *s: rng.normal(size=s).astype(np.float32)
    f64 = lambda *s: rng.normal(size=s)
    return {"a": {"w": f32(7, 5), "b": f64(5), "s": f64()}, "b": [f32(3, 2, 4), f64(6, 1), f32(1)]}


def _per_leaf(trainable, grads_seq, lrs, factors, betas, eps, wd):
    """adamw_reference leaf by leaf: lists of leaves in tree order, back to a tree at the end."""
    leaves = lambda tree: [leaf for _, leaf in named_leaves(tree)]
    p, lr = leaves(trainable), leaves(lrs)
    m, v = [np.zeros_like(x) for x in p], [np.zeros_like(x) for x in p]
    for step, (grads, factor) in enumerate(zip(grads_seq, factors), start=1):
        for i, g in enumerate(leaves(grads)):
            p[i], m[i], v[i] = adamw_reference(p[i], g, m[i], v[i], step, lr[i] * factor, *betas, eps, wd)
    it = iter(p)
    return tree_map(lambda _: next(it), trainable)


@settings(max_examples=20, deadline=None)
@given(seed=seeds, group_lrs=st.booleans(), wd=st.sampled_from([0.0, 0.1]), separate=st.sampled_from([8, 1 << 15]))
def test_flat_update_is_bitwise_the_per_leaf_update(seed, group_lrs, wd, separate):
    """Rejects a reordered or regrouped update, a leaf unpacked at the wrong offset or in
    the wrong shape, and one learning rate used for a group that has two. With ``separate``
    = 8 the leaves of 8 or more elements get buffers of their own; with the default every
    leaf here is small and they share one buffer per dtype (with two learning rates in it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "SEPARATE", separate)
        _check_flat_against_per_leaf(seed, group_lrs, wd)


def _check_flat_against_per_leaf(seed, group_lrs, wd):
    rng = np.random.default_rng(seed)
    trainable = _tree(rng)
    grads_seq = [tree_map(lambda p: rng.normal(size=p.shape).astype(p.dtype), trainable) for _ in range(3)]
    lrs = {"a": tree_map(lambda _: 1e-2, trainable["a"]),
           "b": tree_map(lambda _: 3e-3 if group_lrs else 1e-2, trainable["b"])}
    factors, betas, eps = [0.5, 1.0, 0.25], (0.9, 0.999), 1e-8
    want = _per_leaf(trainable, grads_seq, lrs, factors, betas, eps, wd)
    opt, got = AdamW(trainable, lrs, betas, eps, wd), trainable
    for grads, factor in zip(grads_seq, factors):
        got = opt.update(got, grads, factor)
    for (name, w), (_, g) in zip(named_leaves(want), named_leaves(got), strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape, name
        assert np.array_equal(g, w), f"{name}: max diff {np.max(np.abs(g - w))}"


def test_update_never_modifies_its_inputs():
    """The caller (a callback, TrainingDiverged.last_good) may keep old params: rejects an
    update that writes the new params into the old arrays."""
    rng = np.random.default_rng(0)
    trainable = _tree(rng)
    grads = tree_map(lambda p: rng.normal(size=p.shape).astype(p.dtype), trainable)
    before = tree_map(np.copy, trainable), tree_map(np.copy, grads)
    new = AdamW(trainable, tree_map(lambda _: 1e-2, trainable)).update(trainable, grads)
    for old, kept in zip((trainable, grads), before):
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(named_leaves(old), named_leaves(kept)))
    assert not any(np.array_equal(a, b) for (_, a), (_, b) in zip(named_leaves(new), named_leaves(trainable)))


def test_restarting_from_the_moments_continues_bitwise():
    """What ``fit`` does on resume: a new AdamW from ``moments()`` and the step count carries
    on exactly. Rejects a restart that loses the step count (wrong bias correction) or
    reads the moments back in the wrong order."""
    rng = np.random.default_rng(1)
    trainable = _tree(rng)
    grads = [tree_map(lambda p: rng.normal(size=p.shape).astype(p.dtype), trainable) for _ in range(3)]
    lrs = tree_map(lambda _: 1e-2, trainable)
    straight = AdamW(trainable, lrs)
    p = trainable
    for g in grads:
        p = straight.update(p, g)
    first = AdamW(trainable, lrs)
    q = first.update(trainable, grads[0])
    resumed = AdamW(q, lrs, moments=first.moments(q), step=1)
    for g in grads[1:]:
        q = resumed.update(q, g)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(named_leaves(p), named_leaves(q), strict=True))
