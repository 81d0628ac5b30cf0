"""``fit``: it learns, touches only what it is given, stops on NaN, and follows its schedule.

Several tests use a linear objective ``loss = sum(c * w)``: its gradient is the constant
``c``, so Adam's bias-corrected step is ``lr * c / (|c| + eps)`` and every update can be
predicted in closed form.
"""
import math

import autograd.numpy as anp
import numpy as np
import pytest
from autograd.extend import defvjp, primitive
from hypothesis import given, strategies as st

from ministeer.model import Config, init_params, loss_fn
from ministeer.train import TrainingDiverged, fit, global_norm, learning_rate
from ministeer.tree import named_leaves, tree_map
from strategies import seeds
from tolerances import EXACT

CFG = Config.llama(vocab_size=16, n_ctx=16)


def counting_batches(step):
    """Next-token task: each row counts up mod V from a random start."""
    start = np.random.default_rng(step).integers(0, CFG.vocab_size, (8, 1))
    return (start + np.arange(12)) % CFG.vocab_size


def _copy(tree):
    return tree_map(np.array, tree)


def _bitwise_equal(a, b):
    return all(np.array_equal(x, y) for (_, x), (_, y) in zip(named_leaves(a), named_leaves(b)))


def test_loss_falls_on_a_counting_task():
    result = fit(lambda p, batch: loss_fn(p, batch, CFG), init_params(CFG, 0), counting_batches,
                 steps=30, lr=1e-2)
    assert len(result.losses) == 30 and all(isinstance(x, float) for x in result.losses)
    assert result.losses[0] > 0.9 * math.log(CFG.vocab_size)  # starts near chance
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert result.seconds > 0


def test_completion_only_mask_trains_only_the_masked_positions():
    """First half random noise (unlearnable), second half counting: masked loss still falls."""
    def batch(step):
        rng = np.random.default_rng(step)
        noise = rng.integers(0, CFG.vocab_size, (8, 6))
        return np.concatenate([noise, (noise[:, -1:] + 1 + np.arange(6)) % CFG.vocab_size], axis=1)
    mask = np.zeros((8, 12), dtype=bool)
    mask[:, 6:] = True
    result = fit(lambda p, b: loss_fn(p, b, CFG, mask=mask), init_params(CFG, 1), batch, steps=30, lr=1e-2)
    assert result.losses[-1] < 0.3 * result.losses[0]


def test_only_trainable_leaves_change_and_inputs_are_not_mutated():
    params = init_params(CFG, 0)
    frozen_before = _copy(params)
    trainable = {"lm_head": params["lm_head"], "steer": np.zeros(CFG.d_model)}  # lm_head is shared
    trainable_before = _copy(trainable)
    def objective(t, batch):
        model = {**params, "lm_head": t["lm_head"]}
        return loss_fn(model, batch, CFG, hooks={"blocks.1.hook_resid_post": lambda x, n: x + t["steer"]})
    result = fit(objective, trainable, counting_batches, steps=3, lr=1e-2)
    assert _bitwise_equal(params, frozen_before)  # nothing updated in place
    assert _bitwise_equal(trainable, trainable_before)
    assert set(result.params) == {"lm_head", "steer"}
    for (name, new), (_, old) in zip(named_leaves(result.params), named_leaves(trainable_before)):
        assert not np.array_equal(new, old), f"{name} did not train"


def test_same_seed_same_losses_bitwise():
    def run():
        return fit(lambda p, b: loss_fn(p, b, CFG), init_params(CFG, 7), counting_batches, steps=5, lr=1e-2,
                   schedule="cosine", warmup=2, clip=1.0, weight_decay=0.01)
    a, b = run(), run()
    assert a.losses == b.losses
    assert _bitwise_equal(a.params, b.params)

# ---------------------------------------------------------------- divergence


def test_nan_loss_stops_naming_the_step_with_the_last_good_params():
    """``last_good`` are the parameters of the newest step whose loss was seen finite (step 2
    here), not those the NaN loss was computed from."""
    w0 = np.array([1.0, -2.0])
    objective = lambda w, step: anp.sum(w * w) * (np.nan if step == 3 else 1.0)
    with pytest.raises(TrainingDiverged, match="step 3") as err:
        fit(objective, w0, lambda step: step, steps=10, lr=0.1)
    assert err.value.step == 3 and err.value.good_step == 2
    two_good_steps = fit(objective, w0, lambda step: step, steps=2, lr=0.1).params
    assert np.array_equal(err.value.last_good, two_good_steps)


@primitive
def _explodes(x):
    return x


defvjp(_explodes, lambda ans, x: lambda g: g * np.inf)


def test_infinite_gradient_stops_naming_the_leaf():
    trainable = {"fine": np.ones(2), "bad": np.ones(2)}
    objective = lambda t, step: anp.sum(t["fine"]) + anp.sum(_explodes(t["bad"]) if step == 1 else t["bad"])
    with pytest.raises(TrainingDiverged, match=r"'bad'.*step 1") as err:
        fit(objective, trainable, lambda step: step, steps=4, lr=0.1)
    assert err.value.step == 1 and set(err.value.last_good) == {"fine", "bad"}
    assert isinstance(err.value, FloatingPointError)

# ---------------------------------------------------------------- the optimizer, in closed form


def _linear_objective(c):
    return lambda w, batch: anp.sum(c * w)


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_each_step_moves_by_the_scheduled_learning_rate(schedule):
    c = np.array([3.0, -0.5, 2.0])
    lr, steps, warmup, eps = 0.1, 9, 3, 1e-8
    trajectory = []
    fit(_linear_objective(c), np.zeros(3), lambda s: None, steps=steps, lr=lr, schedule=schedule,
        warmup=warmup, eps=eps, callback=lambda step, loss, w: trajectory.append(w))
    moves = -np.diff(np.concatenate([np.zeros((1, 3)), trajectory]), axis=0)
    expected = [learning_rate(s, steps, lr, schedule, warmup) * c / (np.abs(c) + eps) for s in range(steps)]
    np.testing.assert_allclose(moves, expected, rtol=1e-10, atol=1e-15)  # rounding of w accumulating


def test_weight_decay_is_decoupled():
    """Zero gradient: Adam's step is 0 and only the decay acts, w <- w (1 - lr wd) each step."""
    w0 = np.array([1.0, -3.0, 0.5])
    result = fit(lambda w, b: 0.0 * anp.sum(w), w0, lambda s: None, steps=5, lr=0.1, weight_decay=0.2)
    np.testing.assert_allclose(result.params, w0 * (1 - 0.1 * 0.2) ** 5, **EXACT)


def test_clip_rescales_the_global_gradient_norm():
    """With a large eps Adam is not scale-invariant, so the first step reveals the clipped gradient."""
    c = {"a": np.array([30.0, -40.0]), "b": np.array([120.0])}  # global norm 130
    assert global_norm(c) == pytest.approx(130.0)
    objective = lambda t, batch: anp.sum(c["a"] * t["a"]) + anp.sum(c["b"] * t["b"])
    zeros = {"a": np.zeros(2), "b": np.zeros(1)}
    for clip, scale in ((13.0, 0.1), (1000.0, 1.0)):
        w = fit(objective, zeros, lambda s: None, steps=1, lr=1.0, eps=1.0, clip=clip).params
        for k in c:
            g = c[k] * scale
            np.testing.assert_allclose(w[k], -g / (np.abs(g) + 1.0), rtol=1e-9)


def test_group_lr_sets_one_rate_per_top_level_key():
    trainable = {"lora": np.zeros(2), "steer": np.zeros(2)}
    objective = lambda t, b: anp.sum(t["lora"]) + anp.sum(t["steer"])
    w = fit(objective, trainable, lambda s: None, steps=1, lr=0.5, eps=1e-12, group_lr={"steer": 0.01}).params
    np.testing.assert_allclose(w["lora"], -0.5, rtol=1e-10)
    np.testing.assert_allclose(w["steer"], -0.01, rtol=1e-10)
    with pytest.raises(KeyError, match=r"\['stear'\].*\['lora', 'steer'\]"):
        fit(objective, trainable, lambda s: None, steps=1, group_lr={"stear": 0.01})


def test_project_runs_before_every_step_and_on_the_result():
    calls = []
    def unit(w, step):
        calls.append(step)
        return w / anp.sqrt(anp.sum(w * w))
    w = fit(lambda w, b: anp.sum(np.array([1.0, 2.0]) * w), np.array([3.0, 4.0]), lambda s: None,
            steps=4, lr=0.1, project=unit).params
    assert calls == [0, 1, 2, 3, 4]
    assert np.sqrt(np.sum(w * w)) == pytest.approx(1.0, abs=1e-15)


def test_iterable_data_is_cycled_in_order():
    seen = []
    def objective(w, batch):
        seen.append(batch)
        return anp.sum(w) * batch
    fit(objective, np.zeros(1), [1.0, 2.0, 3.0], steps=7, lr=0.1, progress=True)
    assert seen == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]

# ---------------------------------------------------------------- schedules


@given(steps=st.integers(2, 200), data=st.data(), lr=st.floats(1e-5, 1.0))
def test_schedule_shapes(steps, data, lr):
    warmup = data.draw(st.integers(0, steps - 1))
    for s in range(warmup):  # linear warmup from lr/warmup up to lr
        assert learning_rate(s, steps, lr, "cosine", warmup) == pytest.approx(lr * (s + 1) / warmup)
    after = list(range(warmup, steps))
    for schedule in ("linear", "cosine"):
        values = [learning_rate(s, steps, lr, schedule, warmup) for s in after]
        assert values[0] == pytest.approx(lr)  # decay starts at the peak
        assert all(b <= a + 1e-15 for a, b in zip(values, values[1:]))  # and never rises
        assert all(0.0 <= v <= lr for v in values)
    assert all(learning_rate(s, steps, lr, "constant", warmup) == lr for s in after)
    s = data.draw(st.sampled_from(after))
    progress = (s - warmup) / max(1, steps - warmup)
    assert learning_rate(s, steps, lr, "linear", warmup) == pytest.approx(lr * (1 - progress))
    assert learning_rate(s, steps, lr, "cosine", warmup) == pytest.approx(lr * (1 + math.cos(math.pi * progress)) / 2)


def test_schedule_midpoints_and_unknown_schedule():
    assert learning_rate(50, 100, 1.0, "cosine") == pytest.approx(0.5)
    assert learning_rate(50, 100, 1.0, "linear") == pytest.approx(0.5)
    assert learning_rate(0, 100, 1.0, "cosine", warmup=4) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="'constant', 'linear' or 'cosine'"):
        learning_rate(0, 10, 1.0, "step")


@given(seed=seeds)
def test_adam_first_step_is_lr_times_sign(seed):
    c = np.random.default_rng(seed).normal(size=5)
    w = fit(_linear_objective(c), np.zeros(5), lambda s: None, steps=1, lr=0.3, eps=0.0).params
    np.testing.assert_allclose(w, -0.3 * np.sign(c), **EXACT)

# ---------------------------------------------------------------- no hangs, no silent wrong answers


class _Hung(Exception):
    pass


def _within(seconds, fn):
    """Run ``fn``; a hang becomes a test failure instead of a stuck suite (POSIX timers)."""
    import signal
    def alarm(*_):
        raise _Hung(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_empty_or_exhausted_data_is_an_error_not_a_hang():
    """Rejects ``while True: yield from data``, which spun at 100% CPU on ``[]`` and on a
    one-shot iterator shorter than ``steps``."""
    objective = lambda w, batch: anp.sum(w * batch)
    with pytest.raises(ValueError, match="data yielded no batch"):
        _within(5, lambda: fit(objective, np.ones(2), [], steps=1))
    with pytest.raises(ValueError, match="ran out after 1 batches, but steps=3"):
        _within(5, lambda: fit(objective, np.ones(2), iter([1.0]), steps=3))
    assert len(_within(5, lambda: fit(objective, np.ones(2), iter([1.0, 2.0, 3.0]), steps=3)).losses) == 3


def _model_objective(w, batch):
    return loss_fn(w, batch, CFG)


@pytest.mark.parametrize("lr, steps", [(1e300, 3), (1e150, 3), (1e100, 5)])
def test_last_good_is_finite_and_its_loss_was_finite(lr, steps):
    """Rejects handing back the parameters the non-finite loss came from (they held inf/NaN or
    gave a NaN loss) and an unchecked last update (steps=1 returned inf params silently)."""
    params = init_params(CFG, 3)
    with pytest.raises(TrainingDiverged) as err, np.errstate(all="ignore"):  # overflow is the point
        fit(_model_objective, params, counting_batches, steps=steps, lr=lr)
    good = err.value.last_good
    assert all(np.isfinite(a).all() for _, a in named_leaves(good))
    assert np.isfinite(float(loss_fn(good, counting_batches(err.value.good_step), CFG)))


def test_the_last_update_is_checked():
    """Rejects a loop that checks only at the start of a step: with eps=0 a leaf whose gradient
    is exactly 0 gets 0/0 = NaN in its update, and a one-step run returned it silently."""
    objective = lambda w, b: anp.sum(w[:1])  # w[1] is unused: zero gradient
    with pytest.raises(TrainingDiverged, match=r"update of step 0 made 'trainable' non-finite") as err, \
            np.errstate(invalid="ignore"):
        fit(objective, np.ones(2), lambda s: None, steps=1, eps=0.0)
    assert np.array_equal(err.value.last_good, np.ones(2)) and err.value.good_step == 0


@pytest.mark.parametrize("settings, message", [
    (dict(lr=float("nan")), "lr must be a finite number"), (dict(lr=-1e-3), "lr must be"),
    (dict(betas=(1.0, 0.999)), "betas must be two numbers in"), (dict(betas=(0.9,)), "betas"),
    (dict(eps=float("inf")), "eps must be"), (dict(clip=0.0), "clip must be None or a finite number > 0"),
    (dict(clip=-1.0), "clip must be"), (dict(steps=-1), "steps must be an int >= 0"),
    (dict(steps=2.5), "steps must be"), (dict(steps=True), "steps must be"), (dict(warmup=-1), "warmup"),
    (dict(schedule="step"), "schedule='step'"), (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(group_lr={"a": float("nan")}), r"group_lr\['a'\]"),
    (dict(checkpoint_every=0, checkpoint_dir="x"), "checkpoint_every must be"),
    (dict(checkpoint_every=2), "checkpoint_every needs checkpoint_dir"), (dict(keep=0), "keep must be"),
])
def test_meaningless_settings_are_refused_before_training(settings, message):
    """Rejects AdamW running with NaN or negative rates, beta = 1 (division by 0: NaN params
    returned silently) or clip <= 0 (turns descent into ascent)."""
    calls = []
    objective = lambda w, b: (calls.append(1), anp.sum(w["a"]))[1]
    with pytest.raises(ValueError, match=message):
        fit(objective, {"a": np.ones(2)}, lambda s: None, **{"steps": 3, **settings})
    assert calls == []


def test_nan_initial_state_and_empty_mask_name_their_cause():
    """Rejects "lower the learning rate" for problems no learning rate causes."""
    bad = {"w": np.array([1.0, np.nan])}
    with pytest.raises(ValueError, match=r"initial trainable 'w' holds NaN"):
        fit(lambda t, b: anp.sum(t["w"]), bad, lambda s: None, steps=3)
    mask = np.zeros((8, 12))
    with pytest.raises(ValueError, match="mask selects no position"):
        fit(lambda p, b: loss_fn(p, b, CFG, mask=mask), init_params(CFG, 0), counting_batches, steps=2)
    with pytest.raises(TrainingDiverged, match="first step: the objective or the batch produces it"):
        fit(lambda w, b: anp.sum(w) * np.nan, np.ones(2), lambda s: None, steps=2)

# ---------------------------------------------------------------- checkpoints and bitwise resume

SETTINGS = dict(lr=1e-2, schedule="cosine", warmup=3, clip=1.0, weight_decay=0.01)


class _Crash(Exception):
    pass


def _crash_at(k):
    def callback(step, loss, trainable):
        if step + 1 == k:
            raise _Crash(f"simulated kill after step {k}")
    return callback


@pytest.mark.parametrize("data", [counting_batches, [counting_batches(i) for i in range(3)]], ids=["fn", "list"])
def test_ten_plus_ten_steps_equal_twenty_bitwise(tmp_path, data):
    """Rejects a resume that restarts Adam's moments, the schedule or the data order (10 + 10
    steps used to differ from 20 by up to 0.012)."""
    objective = lambda p, b: loss_fn(p, b, CFG)
    straight = fit(objective, init_params(CFG, 0), data, steps=20, **SETTINGS)
    with pytest.raises(_Crash):
        fit(objective, init_params(CFG, 0), data, steps=20, checkpoint_dir=tmp_path, checkpoint_every=10,
            callback=_crash_at(13), **SETTINGS)
    resumed = fit(objective, init_params(CFG, 0), data, steps=20, checkpoint_dir=tmp_path, resume=True, **SETTINGS)
    assert resumed.losses == straight.losses
    assert _bitwise_equal(resumed.params, straight.params)


def test_checkpoints_keep_the_newest_k_and_resume_refuses_another_run(tmp_path):
    """Rejects keeping every checkpoint, and silently continuing a run under other settings,
    another trainable tree, or from a file that is not a training state."""
    from ministeer.io.state import list_checkpoints
    from ministeer.io import CheckpointError, save_arrays
    objective = lambda w, b: anp.sum((w["a"] - b) ** 2)
    start = {"a": np.zeros(3)}
    fit(objective, start, lambda s: float(s), steps=7, lr=0.1, checkpoint_dir=tmp_path, checkpoint_every=2, keep=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [6, 7]
    with pytest.raises(CheckpointError, match=r"optimizer settings differ in \['lr'\]"):
        fit(objective, start, lambda s: float(s), steps=7, lr=0.2, resume=tmp_path)
    with pytest.raises(CheckpointError, match=r"run differ"):
        fit(objective, start, lambda s: float(s), steps=7, lr=0.1, resume=tmp_path, run={"method": "lora"})
    with pytest.raises(CheckpointError, match=r"different trainable tree"):
        fit(objective, {"a": np.zeros(4)}, lambda s: float(s), steps=7, lr=0.1, resume=tmp_path)
    save_arrays(tmp_path / "other.safetensors", {"w": np.zeros(2)}, {"format": "x"})
    with pytest.raises(CheckpointError, match="not a training-state checkpoint"):
        fit(objective, start, lambda s: float(s), steps=7, lr=0.1, resume=tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        fit(objective, start, lambda s: float(s), steps=7, lr=0.1, resume=tmp_path / "nothing.safetensors")
    fresh = fit(objective, start, lambda s: float(s), steps=2, lr=0.1, checkpoint_dir=tmp_path / "new", resume=True)
    assert len(fresh.losses) == 2  # resume=True with nothing to resume starts afresh


def test_a_corrupt_checkpoint_is_refused_not_resumed(tmp_path):
    """Rejects resuming from a checkpoint whose bytes changed (the digest is checked)."""
    from ministeer.io import CheckpointError
    objective = lambda w, b: anp.sum((w - b) ** 2)
    fit(objective, np.zeros(3), lambda s: float(s), steps=2, lr=0.1, checkpoint_dir=tmp_path)
    path = next(tmp_path.iterdir())
    data = bytearray(path.read_bytes())
    data[-3] ^= 4
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        fit(objective, np.zeros(3), lambda s: float(s), steps=2, lr=0.1, resume=path)
