"""What every checker shares: the failure type, calling the student's code, comparing arrays.

A checker never imports ``solutions``: it computes the right answer its own way (often
with ``autograd`` or a least-squares solve), then compares. On a mismatch it tries a
list of *diagnoses* -- the output a typical mistake would produce (the transpose, the
wrong sign, a forgotten skip connection) -- and names the first one that matches.
"""
import numpy as np  # host side: checkers compare host copies of the results

from ..backend import to_numpy


class ExerciseFailed(AssertionError):
    """A checker rejected the student's answer. The message carries the hint."""


def fail(exercise, message):
    raise ExerciseFailed(f"Exercise {exercise}: {message}")


def passed(exercise, title, detail=""):
    """The pass message, printed so it shows in a notebook and under ``pytest -s``."""
    print(f"✓ Exercise {exercise} ({title}) passed." + (f" {detail}" if detail else ""))
    return True


def call(exercise, fn, *args, on_error=None, **kwargs):
    """Run the student's function. A stub's NotImplementedError, or any crash, becomes a
    failure that says so; ``on_error`` is the hint for a crash (usually a shape mismatch)."""
    if not callable(fn):
        fail(exercise, f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        fail(exercise, f"not implemented yet ({err or 'NotImplementedError'}). "
                       "Replace the `raise NotImplementedError` line with your code.")
    except ExerciseFailed:
        raise
    except Exception as err:
        hint = f" Hint: {on_error}" if on_error else ""
        raise ExerciseFailed(f"Exercise {exercise}: your function raised {type(err).__name__}: {err}.{hint}") from err


def host(x):
    """A float64 NumPy copy of an array from any backend (autograd boxes are unwrapped)."""
    from autograd.tracer import getval
    return np.asarray(to_numpy(getval(x)), dtype=np.float64)


def expect_close(exercise, got, want, diagnoses=(), what="the result", atol=1e-9, rtol=1e-9):
    """Pass if ``got`` matches ``want``; otherwise fail with the hint of the first matching mistake.

    ``diagnoses`` is a list of ``(wrong_output, hint)``: what a typical mistake would
    return, and the sentence that points at it.
    """
    if got is None:
        fail(exercise, f"{what} is None. Did you forget to `return` it?")
    got, want = host(got), host(want)
    if got.shape != want.shape:
        for wrong, hint in diagnoses:
            if wrong is not None and host(wrong).shape == got.shape and np.allclose(got, host(wrong), rtol, atol):
                fail(exercise, f"{what} has shape {got.shape}, expected {want.shape}. Hint: {hint}")
        fail(exercise, f"{what} has shape {got.shape}, expected {want.shape}.")
    if not np.all(np.isfinite(got)):
        fail(exercise, f"{what} contains NaN or inf ({np.mean(~np.isfinite(got)):.0%} of entries).")
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return
    for wrong, hint in diagnoses:
        if wrong is None:
            continue
        wrong = host(wrong)
        if wrong.shape == got.shape and np.allclose(got, wrong, rtol=1e-6, atol=1e-8):
            fail(exercise, f"{what} is wrong. Hint: {hint}")
    err = float(np.max(np.abs(got - want)))
    fail(exercise, f"{what} is wrong: largest error {err:.3g} (scale of the right answer: "
                   f"{float(np.max(np.abs(want))):.3g}). No typical mistake matched; compare your "
                   "steps with the equations on the docs page.")


def rng_for(seed):
    return np.random.default_rng(seed)


def tiny_model(preset="llama", seed=0, n_layers=2, batch=2, n_pos=5):
    """(cfg, params, tokens): a float64 model small enough to check in milliseconds.

    Weights have std 0.3 (not the 0.02 of training init) and the norms are perturbed,
    so every nonlinearity works away from its linear regime and mistakes show.
    """
    from ..model import Config, init_params
    from ..tree import tree_map
    from ..backend import from_numpy
    make = Config.llama if preset == "llama" else Config.gpt2
    extra = dict(n_kv_heads=1) if preset == "llama" else {}
    cfg = make(vocab_size=13, d_model=8, n_heads=2, d_mlp=16, n_layers=n_layers, n_ctx=8, **extra)
    rng = rng_for(seed)
    params = tree_map(lambda a: a + from_numpy(0.3 * rng.normal(size=a.shape)),
                      init_params(cfg, seed, std=0.3))
    tokens = rng.integers(0, cfg.vocab_size, (batch, n_pos))
    return cfg, params, tokens
