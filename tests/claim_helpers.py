"""Small builders shared by the claim tests (tests/test_claim_*.py).

Everything is drawn from a seed with numpy's Generator, so hypothesis explores seeds
and shapes and a failing example replays exactly.
"""
import numpy as np

from ministeer.model import run_with_cache
from ministeer.theory.blocks import block_params
from ministeer.theory.first_order import perturb, random_update
from ministeer.tree import named_leaves

# Pseudo-inverse based identities (input-side shift, oblique projector) lose about
# cond(M) ulps; the matrices the tests draw are well conditioned (checked where drawn,
# cond < 1e4), so 1e-12 * 1e4 = 1e-8 relative error is the honest bound.
PINV = dict(rtol=1e-8, atol=1e-8)


def orthonormal(rng, d, k):
    """[d, k] with orthonormal columns."""
    return np.linalg.qr(rng.normal(size=(d, k)))[0][:, :k]


def complement(Q):
    """An orthonormal basis of the orthogonal complement of span(Q). Q: [d, k] orthonormal."""
    d, k = Q.shape
    full = np.linalg.svd(Q, full_matrices=True)[0]
    return full[:, k:]


def stream(params, tokens, cfg, site):
    return run_with_cache(params, tokens, cfg, names=site)[1][site]


def mlp_update(p_mlp, rng, scale=1.0):
    """A random update of every MLP weight and bias, as a nested dict mirroring p_mlp."""
    return {k: {kk: scale * rng.normal(size=v.shape) for kk, v in sub.items()} for k, sub in p_mlp.items()}


def as_named(dp, prefix):
    """{"down_proj": {"weight": d}} -> {prefix + "down_proj.weight": d}."""
    return {f"{prefix}{k}.{kk}": v for k, sub in dp.items() for kk, v in sub.items()}


def fine_tuned(params, pattern, seed, scale):
    """params + a random update of every leaf matching ``pattern`` (relative size ``scale``)."""
    return perturb(params, random_update(params, pattern, seed=seed, scale=scale))


def leaf_names(params, pattern_prefix):
    return [n for n, _ in named_leaves(params) if n.startswith(pattern_prefix)]


__all__ = ["PINV", "orthonormal", "complement", "stream", "mlp_update", "as_named", "fine_tuned",
           "block_params", "leaf_names"]


def flat_layernorm(cfg):
    """LayerNorm over 2 features is locally constant: (x - mean)/std is (+-1, -+1) for every x.
    Nothing upstream of such a norm reaches past it, so claims about an update *propagating*
    (a changed output, a first-order slope, a context-dependent shift) are vacuous there."""
    return cfg.norm == "layer" and cfg.d_model == 2
