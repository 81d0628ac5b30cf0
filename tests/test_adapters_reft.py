"""ReFT as pyreft defines it: LoReFT's and DiReFT's R stay orthonormal, LoReFT's defining identity,
DiReFT's and NoDiReFT's formulas."""
import numpy as np
from hypothesis import given, strategies as st

from adapter_strategies import randomize
from strategies import model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import Config, forward, init_params, run_with_cache


@given(st.integers(1, 6), st.integers(6, 12), seeds)
def test_orthonormal_rows_is_gram_schmidt(r, d, seed):
    """R R^T = I, and R spans the same rows as the raw matrix, each prefix in order (QR)."""
    X = np.random.default_rng(seed).normal(size=(r, d))
    R = A.orthonormal_rows(X)
    np.testing.assert_allclose(R @ R.T, np.eye(r), **EXACT)
    for k in range(1, r + 1):  # row k of X lies in the span of the first k rows of R
        np.testing.assert_allclose(X[:k] @ R[:k].T @ R[:k], X[:k], **EXACT)


def test_R_stays_orthonormal_through_50_training_steps():
    cfg = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(1).integers(0, 16, (4, 8))
    mask = np.ones((4, 8))
    start = A.build_method("loreft", cfg, params, seed=0, positions=None)
    trained, result = A.train_method("loreft", params, cfg, [{"tokens": tokens, "mask": mask}], steps=50,
                                     lr=2e-2, adapters=start)
    assert result.losses[-1] < result.losses[0]
    for site in trained["reft"].spec["sites"]:
        R, R0 = A.rotation(trained["reft"], site), A.rotation(start["reft"], site)
        assert np.abs(R - R0).max() > 1e-2  # R really moved
        np.testing.assert_allclose(R @ R.T, np.eye(R.shape[0]), rtol=0, atol=1e-10)


@given(model_and_tokens(), seeds)
def test_loreft_with_W_equal_R_and_b_zero_is_the_identity(mt, seed):
    cfg, params, tokens = mt
    adapter = randomize(A.loreft(cfg, r=2 if cfg.d_model > 2 else 1, positions=None), seed)
    adapter = adapter.with_params({s: {**p, "W": A.orthonormal_rows(p["R_raw"]), "b": 0 * p["b"]}
                                   for s, p in adapter.params.items()})
    assert np.array_equal(A.adapted_forward(params, adapter, tokens, cfg), forward(params, tokens, cfg))


@given(model_and_tokens(), seeds)
def test_loreft_sets_the_R_projection_to_W_h_plus_b(mt, seed):
    """pyreft's definition: the edited h' has R h' = W h + b, and h' - h lies in row(R)."""
    cfg, params, tokens = mt
    site = "blocks.0.hook_resid_post"
    adapter = randomize(A.loreft(cfg, sites=site, r=1, positions=None, seed=seed), seed)
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter))
    h, h_new, p = before[site], after[site], adapter.params[site]
    R = A.rotation(adapter, site)
    np.testing.assert_allclose(h_new @ R.T, h @ p["W"].T + p["b"], **EXACT)
    np.testing.assert_allclose((h_new - h) @ R.T @ R, h_new - h, **EXACT)


@given(model_and_tokens(), seeds)
def test_nodireft_is_h_plus_R_transpose_W_h_plus_b(mt, seed):
    cfg, params, tokens = mt
    site = "blocks.0.hook_mlp_out"
    adapter = randomize(A.nodireft(cfg, sites=site, r=3, positions=None, seed=seed), seed)
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter))
    h, p = before[site], adapter.params[site]
    np.testing.assert_allclose(after[site], h + (h @ p["W"].T + p["b"]) @ p["R"], **EXACT)


def test_reft_positions_are_the_first_and_last_prompt_tokens_in_the_loss():
    """With a completion mask, "f1+l1" edits prompt tokens 0 and P-1 only (pyreft), so the loss
    equals one computed with an explicit bool mask over exactly those positions."""
    cfg = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (2, 7))
    mask = np.array([[0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]], float)  # prompts of 4 and 2
    adapter = randomize(A.loreft(cfg, r=2, positions="f1+l1"), 1)
    explicit = adapter.__class__({**adapter.spec, "positions": [[True, False, False, True, False, False, False],
                                                               [True, True, False, False, False, False, False]]},
                                 adapter.params)
    loss = A.adapted_loss(params, adapter, tokens, cfg, mask=mask)
    np.testing.assert_allclose(loss, A.adapted_loss(params, explicit, tokens, cfg, mask=mask), **EXACT)
    assert not np.allclose(loss, A.adapted_loss(params, {}, tokens, cfg, mask=mask))


@given(model_and_tokens(), seeds)
def test_direft_keeps_R_orthonormal_and_nodireft_does_not(mt, seed):
    """pyreft's names: DireftIntervention = h + R^T (W h + b) with R orthonormal (torch's orthogonal
    parametrization; here R = orthonormal_rows(R_raw)); NodireftIntervention = the same with R free.
    Rejects DiReFT using R_raw directly, and NoDiReFT orthonormalizing."""
    cfg, params, tokens = mt
    site = "blocks.0.hook_mlp_out"
    r = min(2, cfg.d_model)
    di = randomize(A.direft(cfg, sites=site, r=r, positions=None, seed=seed), seed)
    nodi = randomize(A.nodireft(cfg, sites=site, r=r, positions=None, seed=seed), seed)
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    h = before[site]
    R = A.rotation(di, site)
    np.testing.assert_allclose(R @ R.T, np.eye(r), **EXACT)
    for adapter, R_used in ((di, R), (nodi, nodi.params[site]["R"])):
        _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter))
        p = adapter.params[site]
        np.testing.assert_allclose(after[site], h + (h @ p["W"].T + p["b"]) @ R_used, **EXACT)


@given(model_and_tokens(), seeds)
def test_direft_and_nodireft_start_as_exact_no_ops(mt, seed):
    """DiReFT: W = b = 0 (R orthonormal cannot be 0); NoDiReFT: R = 0."""
    cfg, params, tokens = mt
    r = min(2, cfg.d_model)
    for make in (A.direft, A.nodireft):
        adapter = make(cfg, r=r, positions=None, seed=seed)
        assert np.array_equal(A.adapted_forward(params, adapter, tokens, cfg), forward(params, tokens, cfg))


def test_direft_R_stays_orthonormal_through_training():
    cfg = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(1).integers(0, 16, (4, 8))
    start = A.build_method("direft", cfg, params, seed=0, positions=None)
    trained, result = A.train_method("direft", params, cfg, [{"tokens": tokens, "mask": np.ones((4, 8))}],
                                     steps=30, lr=2e-2, adapters=start)
    assert result.losses[-1] < result.losses[0]
    for site in trained["reft"].spec["sites"]:
        R, R0 = A.rotation(trained["reft"], site), A.rotation(start["reft"], site)
        assert np.abs(R - R0).max() > 1e-3
        np.testing.assert_allclose(R @ R.T, np.eye(R.shape[0]), rtol=0, atol=1e-10)
