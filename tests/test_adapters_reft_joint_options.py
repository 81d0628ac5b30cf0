"""What sets the ReFT variants and the joint modes apart: the affine form ``fold`` uses (DiReFT's
is ``W``, LoReFT's ``W - R``), which kinds need orthonormal rows (r <= width), and which basis
each joint mode removes. Each test names the wrong implementation it rejects (and its mutant in
``scripts/mutants.py``)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from adapter_strategies import randomize
from strategies import configs, model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.adapters.core import get_kind
from ministeer.model import Config, forward

AFFINE_KINDS = {
    "vector": lambda cfg, site, seed: A.steering_vector(cfg, sites=site),
    "linear": lambda cfg, site, seed: A.lowrank(cfg, sites=site, r=2, activation="linear", seed=seed),
    "loreft": lambda cfg, site, seed: A.loreft(cfg, sites=site, r=1, positions=None, seed=seed),
    "direft": lambda cfg, site, seed: A.direft(cfg, sites=site, r=1, positions=None, seed=seed),
    "nodireft": lambda cfg, site, seed: A.nodireft(cfg, sites=site, r=2, positions=None, seed=seed),
}


@settings(deadline=None)
@given(configs(), st.sampled_from(sorted(AFFINE_KINDS)), seeds)
def test_the_affine_form_of_each_kind_is_its_shift(cfg, kind, seed):
    """For every kind ``fold`` can absorb, ``affine`` gives (P, Q, c) with delta(h) = P Q h + c,
    checked on random h against the kind's own ``delta``. Rejects DiReFT's affine form copied from
    LoReFT, W - R instead of W (mutant ``direft_affine``), and a dropped bias or a transposed R
    in NoDiReFT's."""
    site = "blocks.0.hook_resid_post"
    adapter = randomize(AFFINE_KINDS[kind](cfg, site, seed), seed)
    k = get_kind(adapter.kind)
    p = adapter.params[site]
    h = np.random.default_rng(seed).normal(size=(2, 3, cfg.d_model))
    P, Q, c = k.affine(adapter.spec, p)
    by_parts = (0.0 if P is None else (h @ Q.T) @ P.T) + (0.0 if c is None else c)
    np.testing.assert_allclose(by_parts, k.delta(adapter.spec, p, h), **EXACT)


@settings(deadline=None)
@given(model_and_tokens(presets=("gpt2",)), st.sampled_from(["direft", "nodireft"]), seeds)
def test_direft_and_nodireft_fold_exactly(mt, kind, seed):
    """DiReFT and NoDiReFT at every position of the MLP output fold into the down projection and
    its bias: the folded model's logits equal the adapted ones. Rejects a wrong affine form
    (mutant ``direft_affine``) end to end."""
    cfg, params, tokens = mt
    site = f"blocks.{cfg.n_layers - 1}.hook_mlp_out"
    adapter = randomize(AFFINE_KINDS[kind](cfg, site, seed), seed)
    np.testing.assert_allclose(forward(A.fold(params, adapter, cfg), tokens, cfg),
                               A.adapted_forward(params, adapter, tokens, cfg), **EXACT)


@pytest.mark.parametrize("kind, refused", [("loreft", True), ("direft", True), ("nodireft", False)])
def test_only_the_orthonormal_reft_kinds_refuse_a_rank_above_the_width(kind, refused):
    """r orthonormal rows need r <= d: LoReFT and DiReFT (R orthonormal, as pyreft's
    ``LoreftIntervention`` and ``DireftIntervention``) refuse r = d + 1 with a ValueError naming the
    kind; NoDiReFT (R unconstrained) builds. Rejects a check made for LoReFT only, which lets an
    'orthonormal' DiReFT with r > d build (mutant ``direft_width``), and a check on every kind."""
    cfg = Config.llama(vocab_size=8, d_model=4, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=1, n_ctx=8)
    build = getattr(A, kind)
    if refused:
        with pytest.raises(ValueError, match=f"{kind} needs r <= width"):
            build(cfg, r=5)
        assert build(cfg, r=4).spec["r"] == 4
    else:
        assert build(cfg, r=5).params["blocks.0.hook_resid_post"]["R"].shape == (5, 4)


# ---------------------------------------------------------------- joint modes


def _joint(cfg, B, seed=0):
    lora = A.lora(cfg, r=B.shape[1], targets=["down"], seed=seed)
    path = "model.layers.0.mlp.down_proj"
    lora_p = {**lora.params, path: {**lora.params[path], "lora_B": B}}
    steer = randomize(A.lowrank(cfg, r=3, seed=seed), seed)
    return lora_p, steer.params


@settings(deadline=None)
@given(st.integers(0, 3), seeds)
def test_project_joint_official_means_the_full_basis_whatever_basis_is_passed(rank, seed):
    """``project_joint(mode="official")`` is the input side with all r singular vectors of B (the
    official ``joint/train_orthogonal.py``, https://github.com/SprocketLab/steerling), even when the
    caller leaves ``basis`` at its default "rank". On a rank-deficient B the two bases differ, so
    the official result must equal input + full and (for rank < r) differ from input + rank.
    Rejects keeping the caller's basis in the official mode (mutant ``joint_official_basis``)."""
    cfg = Config.llama(vocab_size=8, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=1, n_ctx=8)
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(8, rank)) @ rng.normal(size=(rank, 3))  # [d, r=3] of the drawn rank
    lora_p, steer_p = _joint(cfg, B, seed)
    site = "blocks.0.hook_resid_post"
    official = A.project_joint(lora_p, steer_p, "official")[site]["D"]
    np.testing.assert_allclose(official, A.project_joint(lora_p, steer_p, "input", basis="full")[site]["D"],
                               **EXACT)
    np.testing.assert_allclose(official @ A.full_basis(B), 0.0, atol=1e-12)  # all r directions gone
    if rank < 3:
        principled = A.project_joint(lora_p, steer_p, "input")[site]["D"]
        assert np.abs(official - principled).max() > 1e-6


@settings(deadline=None)
@given(st.integers(0, 3), seeds)
def test_the_rank_basis_removes_exactly_rank_B_directions(rank, seed):
    """basis="rank": V spans col(B) exactly (rank(B) columns), so D = [e_1; e_2; e_3] becomes
    D (I - V V^T), with D B = 0. Rejects a rank decided without a tolerance (rounding-level singular
    values of a rank-deficient B counted as directions) and the full basis in the principled mode."""
    cfg = Config.llama(vocab_size=8, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=1, n_ctx=8)
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(8, rank)) @ rng.normal(size=(rank, 3))
    assert A.column_basis(B).shape == (8, rank)
    lora_p, steer_p = _joint(cfg, B, seed)
    site = "blocks.0.hook_resid_post"
    steer_p = {site: {**steer_p[site], "D": np.eye(8)[:3]}}  # D [r=3, d]: rows e_1..e_3
    D = A.project_joint(lora_p, steer_p, "input")[site]["D"]
    np.testing.assert_allclose(D @ B, 0.0, atol=1e-12)
    V = A.column_basis(B)
    np.testing.assert_allclose(D, np.eye(8)[:3] @ (np.eye(8) - V @ V.T), **EXACT)
