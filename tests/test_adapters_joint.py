"""Joint LoRA + post-block steering: the orthogonality projection of the official code (https://github.com/SprocketLab/steerling)."""
import numpy as np
from hypothesis import given, strategies as st

from adapter_strategies import randomize
from strategies import configs, model_and_tokens, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import forward


@st.composite
def joint_setup(draw):
    """(cfg, lora, steer) with random factors; B_down has any rank 0..r (0 = the LoRA part zeroed)."""
    cfg = draw(configs())
    seed = draw(seeds)
    r_lora, r_steer = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    lora = randomize(A.lora(cfg, r=r_lora, targets=["q", "down"], seed=seed), seed)
    rng = np.random.default_rng(seed + 7)
    rank = draw(st.integers(0, r_lora))
    params = dict(lora.params)
    for path in lora.spec["modules"]:
        if path.endswith("down_proj"):  # B = X Y with X [d, rank], Y [rank, r]: rank-deficient on purpose
            B = rng.normal(size=(cfg.d_model, rank)) @ rng.normal(size=(rank, r_lora))
            params[path] = {**params[path], "lora_B": B}
    steer = randomize(A.lowrank(cfg, r=r_steer, seed=seed), seed + 1)
    return cfg, lora.with_params(params), steer


def _projected(lora, steer, mode):
    return A.orth_projector(mode)({"lora": lora.params, "steer": steer.params}, 0)["steer"]


def _B(lora, site):
    return lora.params[f"model.layers.{site.split('.')[1]}.mlp.down_proj"]["lora_B"]


@given(joint_setup())
def test_input_projection_makes_D_blind_to_col_B(setup):
    cfg, lora, steer = setup
    for site, p in _projected(lora, steer, "input").items():
        np.testing.assert_allclose(p["D"] @ _B(lora, site), 0.0, **EXACT)  # D B_down = 0
        assert p["U"] is steer.params[site]["U"]


@given(joint_setup())
def test_output_projection_makes_U_write_outside_col_B(setup):
    cfg, lora, steer = setup
    for site, p in _projected(lora, steer, "output").items():
        B = _B(lora, site)
        V = A.column_basis(B)
        assert V.shape[1] == np.linalg.matrix_rank(B)
        np.testing.assert_allclose(V.T @ p["U"], 0.0, **EXACT)  # V^T U = 0
        np.testing.assert_allclose(B.T @ p["U"], 0.0, **EXACT)
        assert p["D"] is steer.params[site]["D"]


@given(joint_setup(), st.sampled_from(["input", "output"]))
def test_projecting_twice_changes_nothing(setup, mode):
    cfg, lora, steer = setup
    once = _projected(lora, steer, mode)
    twice = _projected(lora, steer.with_params(once), mode)
    for site in once:
        for leaf in ("D", "U"):
            np.testing.assert_allclose(twice[site][leaf], once[site][leaf], **EXACT)


@given(model_and_tokens(), st.sampled_from(["input", "output", "none"]), seeds)
def test_with_lora_zeroed_joint_is_post_block_alone(mt, mode, seed):
    """B = 0 (as at init): col(B) is empty, the projection is the identity (bitwise), and the joint
    forward equals the post-block adapter's alone (W + s 0 A == W bitwise)."""
    cfg, params, tokens = mt
    lora = A.lora(cfg, seed=seed)
    lora = lora.with_params({m: {**p, "lora_A": p["lora_A"] + 1.0} for m, p in lora.params.items()})
    steer = randomize(A.lowrank(cfg, seed=seed), seed)
    projected = _projected(lora, steer, mode)
    for site in projected:
        assert projected[site]["D"] is steer.params[site]["D"] and projected[site]["U"] is steer.params[site]["U"]
    joint = A.adapted_forward(params, {"lora": lora, "steer": steer}, tokens, cfg)
    assert np.array_equal(joint, A.adapted_forward(params, steer, tokens, cfg))
    assert not np.array_equal(joint, forward(params, tokens, cfg))


def test_schedule_every_step_every_n_or_init_only():
    from ministeer.model import Config
    cfg = Config.llama()
    lora, steer = randomize(A.lora(cfg, targets="down"), 0), randomize(A.lowrank(cfg), 1)
    trainable = {"lora": lora.params, "steer": steer.params}
    moved = lambda project, step: project(trainable, step)["steer"] is not steer.params
    assert [moved(A.orth_projector("input", every=3), s) for s in range(5)] == [True, False, False, True, False]
    assert [moved(A.orth_projector("input", every="init"), s) for s in range(3)] == [True, False, False]
    assert all(moved(A.orth_projector("output"), s) for s in range(3))


def test_joint_orth_training_keeps_the_constraint():
    """After fit (which projects once more at the end), D B_down = 0 at every layer."""
    from ministeer.model import Config, init_params
    cfg = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 8))
    trained, result = A.train_method("joint_orth_input", params, cfg, [{"tokens": tokens, "mask": np.ones((4, 8))}],
                                     steps=6, lr=1e-2, group_lr={"steer": 2e-2})
    assert result.losses[-1] < result.losses[0]
    for site, p in trained["steer"].params.items():
        B = _B(trained["lora"], site)
        assert np.abs(B).max() > 0
        np.testing.assert_allclose(p["D"] @ B, 0.0, **EXACT)


# ---------------------------------------------------------------- the official code's projection exactly


def _down_B(cfg, B):
    """A joint trainable with lora_B of every down_proj set to ``B`` and D = I (so D_new is the projector)."""
    lora = A.lora(cfg, r=B.shape[1], targets="down")
    steer = A.lowrank(cfg, r=cfg.d_model)
    lora_p = {m: {**p, "lora_B": B} for m, p in lora.params.items()}
    steer_p = {s: {**p, "D": np.eye(cfg.d_model), "U": np.ones_like(p["U"])} for s, p in steer.params.items()}
    return {"lora": lora_p, "steer": steer_p}


def test_official_basis_removes_all_r_directions_even_when_B_is_rank_deficient():
    """Hand case d = 4, r = 2, B = [[2, 0], [0, 0], [0, 0], [0, 0]] (rank 1). D = I, so D_new = I - V V^T.
    Official (all r singular vectors of B^T): a rank-2 projector (trace 4 - 2) that kills e_1;
    principled (numerical rank): exactly I - e_1 e_1^T. Rejects using the rank basis in the
    official mode, and the full basis in the principled one."""
    from ministeer.model import Config
    cfg = Config.llama(vocab_size=8, d_model=4, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=1, n_ctx=8)
    B = np.zeros((4, 2))
    B[0, 0] = 2.0
    trainable = _down_B(cfg, B)
    site = "blocks.0.hook_resid_post"
    official = A.orth_projector("official", steps=10)(trainable, 0)["steer"][site]["D"]
    rank = A.orth_projector("input")(trainable, 0)["steer"][site]["D"]
    np.testing.assert_allclose(rank, np.diag([0.0, 1.0, 1.0, 1.0]), **EXACT)
    np.testing.assert_allclose(np.trace(official), 2.0, **EXACT)
    np.testing.assert_allclose(official @ official, official, **EXACT)  # a projector
    np.testing.assert_allclose(official[:, 0], 0.0, **EXACT)            # e_1 (col B) removed
    assert np.abs(official - rank).max() > 0.5                           # and one more direction


def test_official_basis_at_B_zero_still_removes_r_directions_the_zero_B_quirk():
    """At step 0, B = 0: the principled projection is the identity (bitwise), the official one
    removes r directions (D = I becomes a projector of trace d - r)."""
    from ministeer.model import Config
    cfg = Config.llama(vocab_size=8, d_model=4, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=1, n_ctx=8)
    trainable = _down_B(cfg, np.zeros((4, 3)))
    site = "blocks.0.hook_resid_post"
    assert A.orth_projector("input")(trainable, 0)["steer"] is not None
    assert A.orth_projector("input")(trainable, 0)["steer"][site]["D"] is trainable["steer"][site]["D"]
    official = A.orth_projector("official", steps=10)(trainable, 0)["steer"][site]["D"]
    np.testing.assert_allclose(np.trace(official), 4.0 - 3.0, **EXACT)


def test_official_schedule_is_every_100_steps_at_step_begin_and_not_after_training():
    """fit calls project(trainable, step) before steps 0..steps-1 and once with step = steps. The
    official mode projects at 0, 100, 200 (on_step_begin with global_step % 100 == 0) and not after
    the last step; the principled modes do project after it. Rejects projecting every step and a
    final projection in the official mode."""
    from ministeer.model import Config
    cfg = Config.llama()
    lora, steer = randomize(A.lora(cfg, targets="down"), 0), randomize(A.lowrank(cfg), 1)
    trainable = {"lora": lora.params, "steer": steer.params}
    moved = lambda project, step: project(trainable, step)["steer"] is not steer.params
    official = A.orth_projector("official", steps=200)
    assert [s for s in range(201) if moved(official, s)] == [0, 100]
    assert moved(A.orth_projector("input", every=100, steps=200), 200)
    assert [s for s in range(7) if moved(A.orth_projector("input", every=3, steps=6), s)] == [0, 3, 6]


def test_joint_orth_official_trains_and_projects_only_at_step_zero_in_a_short_run():
    """A 5-step run of "joint_orth_official": projected at step 0 only, so the returned D B != 0
    in general (no final projection), while the principled method keeps D B = 0."""
    from ministeer.model import Config, init_params
    cfg = Config.llama(vocab_size=16, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 8))
    data = [{"tokens": tokens, "mask": np.ones((4, 8))}]
    trained, result = A.train_method("joint_orth_official", params, cfg, data, steps=5, lr=1e-2)
    assert result.losses[-1] < result.losses[0]
    site = trained["steer"].spec["sites"][0]
    assert np.abs(trained["steer"].params[site]["D"] @ _B(trained["lora"], site)).max() > 1e-8


def test_inference_modes_drop_one_space_each():
    """all = both adapters; lora_only = no steering; adapter_only = no LoRA -- the forward of each
    equals the forward with that subset by hand."""
    from ministeer.model import Config, init_params
    cfg = Config.llama(vocab_size=16, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_ctx=8)
    params = init_params(cfg, 0, std=0.3)
    tokens = np.random.default_rng(0).integers(0, 16, (2, 5))
    joint = {"lora": randomize(A.lora(cfg), 0), "steer": randomize(A.lowrank(cfg), 1)}
    modes = A.inference_modes(joint)
    assert tuple(modes) == A.INFERENCE_MODES == ("all", "lora_only", "adapter_only")
    run = lambda ads: A.adapted_forward(params, ads, tokens, cfg)
    assert np.array_equal(run(modes["all"]), run(joint))
    assert np.array_equal(run(modes["lora_only"]), run({"lora": joint["lora"]}))
    assert np.array_equal(run(modes["adapter_only"]), run({"steer": joint["steer"]}))
    assert len({run(m).tobytes() for m in modes.values()}) == 3
    n = np.array([2, 2])
    for mode, fn in A.inference_logits_fns(params, joint, cfg).items():  # what compare evaluates
        assert np.array_equal(fn(tokens, n), A.adapted_forward(params, modes[mode], tokens, cfg, prompt_lengths=n))
