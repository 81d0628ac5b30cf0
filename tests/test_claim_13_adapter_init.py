"""Claim 13: the post-block adapter h + U phi(D h) is an exact no-op at init (U = 0); at step 0 the
gradient reaches U but not D; it has 2 r d L trainable parameters (vector: d L), 0.042% of
Llama-3.2-1B at r = 8.

docs/05-parameterizations.md eqs. (5.9), (5.10); ministeer/adapters (steer.py, count.py).
"""
import numpy as np
import pytest
from autograd import grad
from hypothesis import given, strategies as st

from strategies import model_and_tokens, seeds
from ministeer import adapters as A
from ministeer.model import Config, forward
from ministeer.tree import named_leaves

pytestmark = pytest.mark.claim(13)


@given(model_and_tokens(), st.integers(1, 4), st.sampled_from(["linear", "silu", "gelu", "tanh"]), seeds)
def test_noop_at_init_and_gradient_reaches_U_only(mt, r, activation, seed):
    cfg, params, tokens = mt
    tokens = np.concatenate([tokens, tokens], axis=1)[:, :cfg.n_ctx]  # >= 2 positions: a next-token loss exists
    steer = {"steer": A.lowrank(cfg, r=r, activation=activation, seed=seed % 2**31)}
    assert np.array_equal(A.adapted_forward(params, steer, tokens, cfg), forward(params, tokens, cfg))
    g = dict(named_leaves(grad(A.objective(params, steer, cfg))(A.trainable_of(steer), {"tokens": tokens}, 0)))
    U = [v for n, v in g.items() if n.endswith(".U")]
    D = [v for n, v in g.items() if n.endswith(".D")]
    assert len(U) == len(D) == cfg.n_layers
    assert all(np.all(d == 0.0) for d in D)  # dL/dD = phi'(Dh) (U^T g) h^T and U = 0: exactly zero
    assert sum(float(np.sum(u * u)) for u in U) > 0.0


@given(model_and_tokens(), st.integers(1, 16))
def test_parameter_counts(mt, r):
    cfg, _, _ = mt
    d, L = cfg.d_model, cfg.n_layers
    assert A.count_params(cfg, {"kind": "lowrank", "r": r}).trainable == 2 * r * d * L
    assert A.count_params(cfg, {"kind": "vector"}).trainable == d * L
    built = A.lowrank(cfg, r=r)
    assert sum(int(v.size) for _, v in named_leaves(built.params)) == 2 * r * d * L


def test_llama_1b_percentages_match_the_paper():
    llama_1b = Config.llama(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8,
                            d_mlp=8192, tied=True)
    assert A.count_params(llama_1b, {"kind": "lowrank", "r": 8}).trainable == 524_288
    assert A.count_params(llama_1b, {"kind": "lowrank", "r": 8}).percent == pytest.approx(0.042, abs=5e-4)
    assert A.count_params(llama_1b, {"kind": "vector"}).percent == pytest.approx(0.0027, abs=1e-4)
