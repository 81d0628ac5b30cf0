"""What sets LoFiT and JoLA apart from a plain head edit: LoFiT's step-1 learning rate, its
L1 default and the layer bookkeeping of ``layers=[...]``; JoLA's per-head gate noise, its
decaying gate schedule and its defaults. Each test names the wrong implementation it rejects
(and the mutant of ``scripts/mutants.py`` that implements it)."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from adapter_strategies import randomize
from tolerances import EXACT

from ministeer import adapters as A
J = importlib.import_module("ministeer.adapters.jola")    # the modules (the package exports
L = importlib.import_module("ministeer.adapters.lofit")   # functions of the same names)
from ministeer.model import Config, init_params

from test_adapters_lofit_jola import CFG, copy_task  # the same tiny model and copy task


def keep(k):
    """A LoFiT adapter before step 1: K heads, none chosen yet."""
    return {"lofit": A.init_adapter(CFG, A.make_spec(CFG, "lofit", k=k))}


# ---------------------------------------------------------------- LoFiT


def test_lofit_head_selection_trains_at_a_twentieth_of_the_offset_rate():
    """Step 1 (the scaling vectors) runs at ``lr / 20`` unless ``select_lr`` is given; step 2 at ``lr``.

    Measured, not read off a call: Adam's first step moves every entry by lr * g / (|g| + eps),
    i.e. by the step's rate wherever the gradient is well above eps. Rejects step 1 at ``lr``
    (mutant ``select_lr``), an ignored ``select_lr`` (``select_lr_ignored``) and step 2 at the
    selection rate (``offsets_at_select_lr``).

    The ratio is the one of LoFiT's official two-step script for Llama-2-13B on TruthfulQA
    (https://github.com/fc2869/lo-fit, ``train_script.sh``: ``--lofit_component A --lr 1e-3``,
    then ``--lofit_component v --lr 2e-2``)."""
    params = init_params(CFG, 0, std=0.3)
    for lr, select_lr, expected in ((0.2, None, 0.01), (0.2, 0.03, 0.03)):
        _, result = A.train_lofit(params, CFG, lambda step: copy_task(step), steps=1, lr=lr, seed=4,
                                  select_lr=select_lr, adapters=keep(1))
        start = A.lofit_scale(CFG, seed=4)
        moved = np.concatenate([np.abs(result.select.params["scale"][s]["A"] - start.params[s]["A"]).ravel()
                                for s in start.spec["sites"]])
        assert moved.max() == pytest.approx(expected, rel=1e-3)
        assert np.median(moved) == pytest.approx(expected, rel=1e-2)
    trained, _ = A.train_lofit(params, CFG, lambda step: copy_task(step), steps=1, lr=0.2, seed=4, adapters=keep(2))
    heads = trained["lofit"].spec["heads"]
    start = A.lofit(CFG, heads, seed=5)  # step 2's offsets start from seed + 1
    moved = np.concatenate([np.abs(trained["lofit"].params[s]["v"] - start.params[s]["v"]).ravel()
                            for s in start.spec["sites"]])
    assert moved.max() == pytest.approx(0.2, rel=1e-3)  # step 2 at lr itself (mutant ``offsets_at_select_lr``)


def test_lofit_defaults_are_pinned():
    """L1 lambda 5e-3 (a sum over heads), N(0, 1e-3) init. Rejects a changed default slipping in
    unnoticed (mutant ``lofit_l1_default``). K's default, the official scripts' share of the
    heads, is pinned in tests/test_adapters_fair.py.

    Source of the two steps: https://github.com/fc2869/lo-fit, ``lofit_trainer.py`` and
    ``train_script.sh`` (whose ``--l1_lambda`` is 5e-4 or 1e-3 per model: 5e-3 is this project's
    toy-scale choice, pinned here so that changing it is a decision)."""
    assert A.make_spec(CFG, "lofit_scale")["l1"] == 5e-3
    assert A.make_spec(CFG, "lofit_scale")["init_std"] == 1e-3
    import inspect
    assert inspect.signature(L.train_lofit).parameters["l1"].default == 5e-3


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2 ** 16))
def test_lofit_with_chosen_layers_selects_heads_of_those_layers(seed):
    """``layers=[1]``: step 1 learns scales on layer 1 only, so every kept head is a head of layer 1,
    and they are the heads whose scale norms are largest. Rejects reading the norm matrix's rows
    as layers 0..n-1 instead of the edited layers (mutant ``lofit_rows``): heads of layer 0,
    which step 1 never trained."""
    params = init_params(CFG, 0, std=0.3)
    trained, result = A.train_lofit(params, CFG, lambda step: copy_task(step), steps=2, lr=0.1, seed=seed,
                                    layers=[1], adapters=keep(2))
    heads = trained["lofit"].spec["heads"]
    assert [l for l, _ in heads] == [1, 1]
    norms = np.linalg.norm(result.select.params["scale"]["blocks.1.attn.hook_z"]["A"], axis=-1)  # [H]
    assert [h for _, h in heads] == list(np.argsort(-norms, kind="stable")[:2])


def test_lofit_step_two_starts_from_zero_scales_and_keeps_only_offsets():
    """Step 2 keeps only the K offset vectors: the trained model has no scaling adapter, and with
    ``init_std=0`` step 2 starts as an exact no-op (the official step 2 starts from A = 0).
    Rejects carrying step 1's scales into the result."""
    params = init_params(CFG, 0, std=0.3)
    trained, _ = A.train_lofit(params, CFG, lambda step: copy_task(step), steps=1, lr=0.1, seed=0, adapters=keep(2))
    assert list(trained) == ["lofit"] and trained["lofit"].kind == "lofit"
    assert {leaf for p in trained["lofit"].params.values() for leaf in p} == {"v"}


# ---------------------------------------------------------------- JoLA


def test_jola_gate_noise_is_one_draw_per_gate_per_head_per_layer():
    """``sample`` draws u1 and u2 independently for every head of every layer, in (eps, 1 - eps).
    Rejects one draw shared by the heads of a layer (mutant ``jola_noise_shared``), u2 = u1,
    and one draw shared by the layers."""
    spec = A.make_spec(CFG, "jola")
    for seed in range(5):
        draws = J.sample(CFG, spec, np.random.default_rng(seed))
        assert sorted(draws) == spec["sites"]
        values = np.concatenate([np.concatenate([d["u1"], d["u2"]]) for d in draws.values()])
        assert values.shape == (2 * CFG.n_layers * CFG.n_heads,)
        assert len(set(values.tolist())) == values.size  # all distinct
        assert values.min() > spec["eps"] and values.max() < 1 - spec["eps"]


def test_training_gates_differ_per_head_under_one_draw():
    """Through the hooks: with A = 0, v = 1 and log_alpha = 0 for every head, the training-mode edit
    of head h is its gate g1_h, so one step's edit differs between the heads of a layer. Rejects
    noise shared by the heads (every head would get the same gate)."""
    adapter = A.jola(CFG, layers=[0], init_std=0.0)
    site = "blocks.0.attn.hook_z"
    p = {"A": np.zeros((CFG.n_heads, CFG.d_head)), "v": np.ones((CFG.n_heads, CFG.d_head)),
         "log_g1": np.zeros(CFG.n_heads), "log_g2": np.zeros(CFG.n_heads)}
    adapter = adapter.with_params({site: p})
    draws = {"jola": J.sample(CFG, adapter.spec, np.random.default_rng(0))}
    (hook,) = A.adapter_hooks({"jola": adapter}, draws=draws)[site]
    z = np.zeros((1, 2, CFG.n_heads, CFG.d_head))
    edit = hook(z, site)[0, 0, :, 0]  # [H]
    np.testing.assert_allclose(edit, J.gates(adapter.spec, p["log_g1"], draws["jola"][site]["u1"]), **EXACT)
    assert len(set(np.round(edit, 12).tolist())) > 1


def test_jola_gate_schedule_is_the_official_exponential_decay():
    """lam_t = 0.1 exp(-0.01 t), the official default ("expon") gate schedule: JoLA's trainer
    (https://github.com/wenlai-lavine/jola, ``jola/trainers.py``: ``ExponentialDecaySchedule(
    start_lambda=0.1, decay_rate=0.01)``, 0.1 at the first step, then 0.1 exp(-0.01 k) after k
    steps). Rejects a constant lambda, another rate, and a schedule counted from 1."""
    spec = A.make_spec(CFG, "jola")
    assert (spec["gate_lambda"], spec["gate_decay"]) == (0.1, 0.01)
    for t in (0, 1, 7, 100, 250):
        assert J.gate_lambda(spec, t) == pytest.approx(0.1 * np.exp(-0.01 * t), rel=1e-14)


def test_the_training_objective_gives_each_step_its_own_penalty_weight():
    """The objective passes the optimizer step t to the penalty: with g1 always open and g2 always
    closed (log_alpha = +-50, so the training and evaluation losses agree bitwise), objective minus
    evaluation loss = lam_t P1 + (1 - lam_t) P2 over L H, and it changes as t grows. Rejects a
    penalty that always sees step 0, so JoLA's lam_t never decays (mutant
    ``jola_schedule_frozen``)."""
    params = init_params(CFG, 0, std=0.3)
    adapter = randomize(A.jola(CFG, seed=0), 0)
    adapter = adapter.with_params({s: {**p, "log_g1": 0 * p["log_g1"] + 50, "log_g2": 0 * p["log_g2"] - 50}
                                   for s, p in adapter.params.items()})
    ads, batch = {"jola": adapter}, copy_task(0)
    evaluation = A.adapted_loss(params, ads, batch["tokens"], CFG, mask=batch["mask"])
    objective = A.objective(params, ads, CFG)
    trainable = A.trainable_of(ads)
    gaps = [objective(trainable, batch, step) - evaluation for step in (0, 1, 2, 300)]
    for gap, t in zip(gaps, (0, 1, 2, 300)):
        np.testing.assert_allclose(gap, J.l0_penalty(CFG, adapter.spec, adapter.params, t), **EXACT)
    assert gaps[3] < gaps[0] - 0.05 / (CFG.n_layers * CFG.n_heads)  # lam_300 = 0.1 e^-3: g1's weight fell


def test_jolas_penalty_is_divided_by_all_layers_heads_even_when_fewer_are_edited():
    """JoLA on layer 0 of a 2-layer model: the penalty is divided by L H of the *model* (the official
    ``num_hidden_layers * num_attention_heads``), not by the edited layers' heads. Rejects a
    division by the edited layers (mutant ``jola_penalty_edited_layers``), which doubles the
    penalty here."""
    adapter = randomize(A.jola(CFG, layers=[0], seed=0), 0, scale=1.0)
    (p,) = adapter.params.values()
    P = lambda a: np.clip(1 / (1 + np.exp(-(a - 0.33 * np.log(0.1 / 1.1)))), 1e-6, 1 - 1e-6)
    lam = 0.1 * np.exp(-0.01 * 3)
    hand = (lam * P(p["log_g1"]).mean() + (1 - lam) * P(p["log_g2"]).mean()) / (2 * CFG.n_heads)
    np.testing.assert_allclose(J.l0_penalty(CFG, adapter.spec, adapter.params, 3), hand, **EXACT)


def test_jolas_evaluation_gates_are_the_untempered_expected_gate():
    """Evaluation (no noise): g = clip(1.2 sigmoid(a) - 0.1, 0, 1) with no temperature, as the
    official ``get_gates(is_train=False)``. At a = 0 and a = +-10 a tempered sigmoid gives the same
    numbers, so a = +-1 and 2 are checked. Rejects evaluation gates divided by the temperature
    (mutant ``jola_eval_tempered``)."""
    spec = A.make_spec(CFG, "jola")
    a = np.array([-1.0, 1.0, 2.0])
    np.testing.assert_allclose(J.gates(spec, a), np.clip(1.2 / (1 + np.exp(-a)) - 0.1, 0, 1), **EXACT)
