"""Claim 14: the Joint-Orth projection D <- D (I - V V^T), V an orthonormal basis of col(B_down):
D B_down = 0, re-applying it changes nothing, and the adapter cannot see the LoRA's write
directions: Delta(h + B_down c) = Delta(h). The output variant U <- (I - V V^T) U gives V^T U = 0.

docs/06-joint-adaptation.md eqs. (6.1)-(6.3); ministeer/adapters/joint.py.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from strategies import seeds
from ministeer.adapters.joint import column_basis, project_joint, project_out
from ministeer.adapters.steer import lowrank_delta

pytestmark = pytest.mark.claim(14)


def _draw(seed, d, r_lora, r):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(d, r_lora))
    return rng, B, {"D": rng.normal(size=(r, d)), "U": rng.normal(size=(d, r))}


@given(seeds, st.integers(2, 16), st.integers(1, 4), st.integers(1, 4), st.sampled_from(["linear", "silu"]))
def test_input_projection_blinds_the_adapter_to_lora_writes(seed, d, r_lora, r, activation):
    rng, B, p = _draw(seed, d, min(r_lora, d - 1), r)
    V = column_basis(B)
    q = project_out(p, V, "input")
    scale = np.linalg.norm(p["D"]) * np.linalg.norm(B)
    assert np.max(np.abs(q["D"] @ B)) <= 1e-12 * scale
    np.testing.assert_allclose(project_out(q, V, "input")["D"], q["D"], rtol=0, atol=1e-14 * np.linalg.norm(p["D"]))
    spec = {"activation": activation, "alpha": 1.0}
    h, c = rng.normal(size=(3, d)), rng.normal(size=(3, B.shape[1]))
    np.testing.assert_allclose(lowrank_delta(spec, q, h + c @ B.T), lowrank_delta(spec, q, h), rtol=1e-11, atol=1e-11)
    # negative: before the projection the adapter does see them
    assert np.max(np.abs(lowrank_delta(spec, p, h + c @ B.T) - lowrank_delta(spec, p, h))) > 1e-8


@given(seeds, st.integers(2, 16), st.integers(1, 4), st.integers(1, 4))
def test_output_projection_makes_writes_orthogonal(seed, d, r_lora, r):
    rng, B, p = _draw(seed, d, min(r_lora, d - 1), r)
    V = column_basis(B)
    out = project_out(p, V, "output")
    assert np.max(np.abs(V.T @ out["U"])) <= 1e-12 * np.linalg.norm(p["U"])
    assert np.array_equal(out["D"], p["D"])  # the read side is untouched: it still sees B's directions
    assert np.max(np.abs(out["D"] @ B)) > 1e-8


@given(seeds, st.integers(2, 10), st.integers(1, 3))
def test_project_joint_applies_per_layer(seed, d, r):
    rng = np.random.default_rng(seed)
    lora = {f"model.layers.{l}.mlp.down_proj": {"lora_A": rng.normal(size=(r, 2 * d)), "lora_B": rng.normal(size=(d, r))}
            for l in range(2)}
    steer = {f"blocks.{l}.hook_resid_post": {"D": rng.normal(size=(2, d)), "U": rng.normal(size=(d, 2))} for l in range(2)}
    out = project_joint(lora, steer, "input")
    for l in range(2):
        B = lora[f"model.layers.{l}.mlp.down_proj"]["lora_B"]
        assert np.max(np.abs(out[f"blocks.{l}.hook_resid_post"]["D"] @ B)) <= 1e-12 * np.linalg.norm(B) * d
