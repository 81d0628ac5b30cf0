"""Grading for the classroom exercises (docs pages 1-6, ``ministeer/exercises/``).

* ``test_answer[N.M]`` grades one exercise. It uses the answers named by the
  ``MINISTEER_EXERCISES`` environment variable (a student's .py file or folder), else the
  reference solutions. ``pytest -m exercise_2_1`` grades exercise 2.1 alone;
  ``pytest -m exercise`` grades them all.
* ``test_wrong_answer`` proves each checker rejects typical mistakes *with the right
  hint*. The wrong answers are built from the reference solutions, so these tests skip
  when an instructor has deleted ``ministeer/exercises/solutions.py``.
* ``test_stub`` proves the starter stubs in ``examples/exercises/`` exist for every
  exercise and fail cleanly (they raise NotImplementedError by design; CI never grades them).
"""
import os
from pathlib import Path

import numpy as np
import pytest

from ministeer import run_with_cache
from ministeer.exercises import EXERCISES, ExerciseFailed, load_answers, marker
from ministeer.tree import tree_map

STUBS = Path(__file__).resolve().parent.parent / "examples" / "exercises"


def marks(number):
    return [pytest.mark.exercise, getattr(pytest.mark, marker(number))]


def by_number(numbers):
    return [pytest.param(n, marks=marks(n), id=n) for n in numbers]


try:
    from ministeer.exercises import solutions as S
except ImportError:  # an instructor removed the reference solutions
    S = None


@pytest.fixture(scope="module")
def answers():
    try:
        return load_answers()
    except ImportError:
        pytest.skip("no MINISTEER_EXERCISES given and the reference solutions were removed")


@pytest.mark.parametrize("number", by_number(EXERCISES))
def test_answer(number, answers, capsys):
    name, checker, page = EXERCISES[number]
    if name not in answers:
        source = os.environ.get("MINISTEER_EXERCISES", "ministeer.exercises.solutions")
        pytest.fail(f"Exercise {number}: no function {name!r} in {source} (see {page})")
    assert checker(answers[name]) is True
    assert f"Exercise {number}" in capsys.readouterr().out  # the pass message was printed


# ---------------------------------------------------------------- typical wrong answers


def _wrong_answers():
    """``(number, label, wrong function, a phrase the hint must contain)``."""
    if S is None:
        return []

    def hook_with(shift_position=0, everywhere=False, in_place=False, item_assign=False):
        def make(vector, position):
            def hook(act, name):
                if in_place:
                    act[:, position % act.shape[1]] += vector
                    return act * 1.0
                if item_assign:
                    out = np.array(act)
                    out[:, position % act.shape[1]] += np.asarray(vector)
                    return out
                if everywhere:
                    return act + vector
                return S.add_at_position(vector, position + shift_position)(act, name)
            return hook
        return make

    def weak_property(impl):  # checks almost nothing
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=5, database=None)
        @given(st.integers(0, 100))
        def prop(seed):
            v, residual = impl(np.eye(2), np.ones((3, 2)))
            assert np.all(np.isfinite(v))
        return prop

    def too_strict_property(impl):  # demands exact float equality: fails on the true function
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=20, database=None)
        @given(st.integers(0, 10**6))
        def prop(seed):
            rng = np.random.default_rng(seed)
            dW, X = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
            v, residual = impl(dW, X)
            assert float(residual) == float(np.sum((X @ dW.T - v) ** 2))
            assert float(residual) < 0.5
        return prop

    def not_hypothesis(impl):
        return lambda: None

    def exact_shift(params, delta, tokens, cfg, site):
        at = lambda p: run_with_cache(p, tokens, cfg, names=[site])[1][site]
        return at(tree_map(lambda a, b: a + b, params, delta)) - at(params)

    def always_layer(site_suffix, layer=0, reason="its output lies in the column space of W_d"):
        return lambda problem: (f"blocks.{layer}.{site_suffix}", reason)

    def right_site_no_reason(problem):
        site, _ = S.find_unreachable_site(problem)
        return site, "because it is before the MLP"

    return [
        ("1.1", "no skip", lambda cache, l: cache[f"blocks.{l}.hook_attn_out"] + cache[f"blocks.{l}.hook_mlp_out"],
         "skip connection"),
        ("1.1", "attention twice", lambda cache, l: sum(cache[f"blocks.{l}.{s}"] for s in
                                                        ("hook_resid_mid", "hook_attn_out", "hook_mlp_out")),
         "counted twice"),
        ("1.2", "off by one", hook_with(shift_position=1), "off by one"),
        ("1.2", "every position", hook_with(everywhere=True), "every position"),
        ("1.2", "in place", hook_with(in_place=True), "in place"),
        ("1.2", "item assignment", hook_with(item_assign=True), "item assignment"),
        ("2.1", "transposed", lambda W, dW, x: x @ dW, "transposed"),
        ("2.1", "sign", lambda W, dW, x: -S.linear_shift(W, dW, x), "sign error"),
        ("2.1", "fine-tuned output", lambda W, dW, x: x @ (W + dW).T, "fine-tuned output"),
        ("2.2", "sign", lambda *a: -S.first_order_shift(*a), "sign error"),
        ("2.2", "exact shift", exact_shift, "exact shift"),
        ("2.3", "W transposed", lambda W, dW, x: x @ (W.T @ dW).T, "pseudo-inverse"),
        ("2.3", "output shift", lambda W, dW, x: x @ dW.T, "that is the output shift"),
        ("2.3", "sign", lambda W, dW, x: -S.input_shift(W, dW, x), "sign error"),
        ("5.1", "first sample", lambda dW, X: (dW @ X[0], S.best_constant_steer(dW, X)[1]), "mean shift"),
        ("5.1", "unsquared", lambda dW, X: (S.best_constant_steer(dW, X)[0],
                                            np.linalg.norm((X - X.mean(0)) @ dW.T, axis=1).sum()), "squared"),
        ("5.1", "mean residual", lambda dW, X: (S.best_constant_steer(dW, X)[0],
                                                S.best_constant_steer(dW, X)[1] / len(X)), "sum over"),
        ("5.2", "weak property", weak_property, "passed an implementation"),
        ("5.2", "too strict", too_strict_property, "correct* implementation"),
        ("5.2", "not a hypothesis test", not_hypothesis, "@given"),
        ("3.1", "transposed", lambda *a: S.glu_jacobian(*a).T, "transposed"),
        ("3.1", "no gated path", lambda h, Wg, Wu, Wd: Wd @ ((Wg @ h / (1 + np.exp(-(Wg @ h))))[:, None] * Wu),
         "gated path is missing"),
        ("3.1", "silu not silu'", lambda h, Wg, Wu, Wd: Wd @ (
            ((Wg @ h) / (1 + np.exp(-(Wg @ h))) * (Wu @ h))[:, None] * Wg
            + ((Wg @ h) / (1 + np.exp(-(Wg @ h))))[:, None] * Wu), "derivative"),
        ("3.2", "reachable part", lambda Wd, dWd, M: M @ dWd.T - S.unreachable_part(Wd, dWd, M), "reachable"),
        ("3.2", "W W^T", lambda Wd, dWd, M: M @ dWd.T - (M @ dWd.T) @ (Wd @ Wd.T).T, "not a projector"),
        ("4.1", "post-block", always_layer("post_block"), "post-block steering"),
        ("4.1", "always layer 0", always_layer("pre_mlp"), "rank d"),
        ("4.1", "attention output", lambda p: (S.find_unreachable_site(p)[0].replace("pre_mlp", "hook_attn_out"),
                                               "column space of W_d"), "skip connection"),
        ("4.1", "no reason", right_site_no_reason, "column space"),
        ("5.3", "shift only", lambda h, D, U, phi: phi(h @ D.T) @ U.T, "missed skip connection"),
        ("5.3", "phi outside", lambda h, D, U, phi: h + phi(h @ D.T @ U.T), "bottleneck"),
        ("5.3", "transposed", lambda h, D, U, phi: h + phi(h @ D) @ U, "h @ D.T"),
        ("5.4", "DiReFT", lambda h, R, W, b: h + (h @ W.T + b) @ R, "DiReFT"),
        ("5.4", "sign", lambda h, R, W, b: 2 * h - S.loreft(h, R, W, b), "sign error"),
        ("5.4", "no skip", lambda h, R, W, b: S.loreft(h, R, W, b) - h, "missed skip"),
        ("5.5", "one matrix", lambda d, L, r: d * L if r is None else r * d * L, "two matrices"),
        ("5.5", "off by one", lambda d, L, r: d * L if r is None else 2 * r * d * (L - 1), "off by one"),
        ("6.1", "not orthonormal", lambda D, B: D - D @ B @ B.T, "not orthonormal"),
        ("6.1", "kept the overlap", lambda D, B: D - S.project_read(D, B), "kept the part"),
        ("6.2", "not orthonormal", lambda U, B: U - B @ (B.T @ U), "not orthonormal"),
        ("6.2", "kept the overlap", lambda U, B: U - S.project_write(U, B), "kept the part"),
    ]


@pytest.mark.skipif(S is None, reason="reference solutions removed")
@pytest.mark.parametrize("number, label, wrong, hint", [
    pytest.param(n, label, fn, hint, marks=marks(n), id=f"{n}-{label}") for n, label, fn, hint in _wrong_answers()])
def test_wrong_answer(number, label, wrong, hint):
    checker = EXERCISES[number][1]
    with pytest.raises(ExerciseFailed) as err:
        checker(wrong)
    assert f"Exercise {number}" in str(err.value)
    assert hint.lower() in str(err.value).lower(), f"expected a hint about {hint!r}, got: {err.value}"


def test_every_exercise_has_wrong_answers():
    if S is None:
        pytest.skip("reference solutions removed")
    covered = {n for n, *_ in _wrong_answers()}
    assert covered == set(EXERCISES)


# ---------------------------------------------------------------- the starter stubs


@pytest.mark.parametrize("number", by_number(EXERCISES))
def test_stub(number):
    """The stub exists, raises NotImplementedError("Exercise N.M: ..."), and the checker says so."""
    stubs = load_answers(STUBS)
    name, checker, _ = EXERCISES[number]
    assert name in stubs, f"examples/exercises/ has no stub {name!r} for Exercise {number}"
    with pytest.raises(ExerciseFailed, match=rf"Exercise {number}: not implemented yet \(Exercise {number}:"):
        checker(stubs[name])


def test_markers_declared(pytestconfig):
    declared = "\n".join(pytestconfig.getini("markers"))
    for number in EXERCISES:
        assert marker(number) + ":" in declared, f"declare the marker {marker(number)} in pyproject.toml"
