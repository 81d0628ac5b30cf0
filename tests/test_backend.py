"""The backend switch, the differentiable namespace (backend/namespace.py) and the GPU path on the CPU stand-in.

``ministeer/backend/fake.py`` behaves like CuPy where it matters (no implicit conversion to
NumPy, no mixing with host arrays, 0-d reductions, counted transfers), so everything here
exercises the code a real GPU runs. Every result is compared with the NumPy backend at
``EXACT`` in float64 (the same arithmetic in the same order, up to BLAS blocking).
"""
import os
import subprocess
import sys

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, make_jvp
from hypothesis import assume, given, settings, strategies as st

from ministeer import backend, from_numpy, to_numpy, use_backend
from ministeer.backend import fake as fakecupy
from ministeer.backend.fake import FakeArray, count_transfers
from ministeer.model import Config, forward, init_params, loss_fn, run_with_cache
from ministeer.train import fit
from ministeer.tree import named_leaves, tree_map
from ministeer.backend.namespace import ELEMENTWISE, STRUCTURAL
from strategies import model_and_tokens, seeds
from tolerances import EXACT, EXACT32

fakecupy.register()
FAKE = "fakecupy"


def on_fake(tree):
    with use_backend(FAKE):
        return tree_map(lambda a: from_numpy(a) if isinstance(a, np.ndarray) else a, tree)


def host(tree):
    return tree_map(lambda a: fakecupy.asnumpy(a), tree)


def assert_trees_close(a, b, **tol):
    for (name, x), (_, y) in zip(named_leaves(host(a)), named_leaves(host(b)), strict=True):
        np.testing.assert_allclose(x, y, err_msg=name, **(tol or EXACT))

# ---------------------------------------------------------------- the switch


def test_default_is_numpy_and_never_imports_cupy():
    env = {k: v for k, v in os.environ.items() if k != "MINISTEER_BACKEND"}
    code = ("import sys, ministeer; from ministeer.backend import get_backend; "
            "assert get_backend().name == 'numpy'; assert 'cupy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_environment_variable_picks_the_backend(monkeypatch):
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.setenv("MINISTEER_BACKEND", FAKE)
    assert backend.get_backend().name == FAKE
    monkeypatch.setattr(backend, "_active", None)
    monkeypatch.delenv("MINISTEER_BACKEND")
    assert backend.get_backend().name == "numpy"


def test_use_backend_switches_and_restores_even_on_error():
    with pytest.raises(ZeroDivisionError):
        with use_backend(FAKE) as b:
            assert b.name == FAKE and backend.get_backend() is b
            1 / 0
    assert backend.get_backend().name == "numpy"


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(KeyError, match="numpy"):
        backend.set_backend("tpu")


def test_missing_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail, as without CuPy
    monkeypatch.setattr(backend, "_cache", {})
    with pytest.raises(RuntimeError, match=r'pip install -e "\.\[gpu\]"'):
        backend.set_backend("cupy")
    assert backend.get_backend().name == "numpy"

# ---------------------------------------------------------------- the stand-in is strict


def test_stand_in_refuses_implicit_conversion_and_host_arrays():
    with count_transfers() as n:
        a = fakecupy.asarray(np.arange(6.0).reshape(2, 3))
    assert n["to_device"] == 1
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    for mix in (lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: fakecupy.sum(np.ones(3)),
                lambda: a[np.array([0, 1])], lambda: fakecupy.where(a > 1, a, np.zeros(3))):
        with pytest.raises(TypeError, match="host numpy array"):
            mix()


def test_stand_in_reductions_are_0d_device_arrays_and_copies_are_counted():
    a = fakecupy.asarray(np.arange(6.0).reshape(2, 3))
    for r in (a.sum(), fakecupy.max(a), np.sum(a), a[1, 2], fakecupy.linalg.norm(a)):
        assert type(r) is FakeArray and r.shape == ()
    with count_transfers() as n:
        assert np.array_equal(a.get(), np.arange(6.0).reshape(2, 3))
        assert float(a.sum()) == 15.0 and bool(a[0, 0] == 0.0)
    assert (n["to_host"], n["implicit"]) == (1, 2)
    with count_transfers(strict=True), pytest.raises(RuntimeError, match="hidden device->host"):
        float(a.sum())


def test_raw_ops_refuse_traced_values():
    with use_backend(FAKE):
        x = from_numpy(np.ones(3))
        with pytest.raises(TypeError, match="traced value"):
            grad(lambda v: fakecupy.sum(v))(x)

# ---------------------------------------------------------------- every xp op: value, VJP, JVP


def _case(name, rng):
    """(function of (xp, *arrays), the arrays): each op with broadcasting where it has any."""
    x = lambda *s: rng.normal(size=s)
    pos = lambda *s: rng.uniform(0.5, 2.0, size=s)
    binary = lambda f: (f, [x(3, 4), x(4)])
    table = {
        "add": binary(lambda xp, a, b: xp.add(a, b)), "subtract": binary(lambda xp, a, b: a - b),
        "multiply": binary(lambda xp, a, b: 2.0 * a * b), "divide": (lambda xp, a, b: a / b, [x(3, 1), pos(4)]),
        "negative": (lambda xp, a: -a, [x(2, 3)]),
        "power": (lambda xp, a, b: a ** b + a ** 3, [pos(2, 3), x(3)]),
        "maximum": binary(lambda xp, a, b: xp.maximum(a, b)), "minimum": binary(lambda xp, a, b: xp.minimum(a, 0.1 * b)),
        "where": (lambda xp, a, b: xp.where(a > 0, a, b), [x(3, 4), x(3, 4)]),  # anp.where cannot unbroadcast
        "exp": (lambda xp, a: xp.exp(a), [x(5)]), "log": (lambda xp, a: xp.log(a), [pos(5)]),
        "sqrt": (lambda xp, a: xp.sqrt(a), [pos(5)]), "tanh": (lambda xp, a: xp.tanh(a), [x(5)]),
        "sin": (lambda xp, a: xp.sin(a), [x(5)]), "cos": (lambda xp, a: xp.cos(a), [x(5)]),
        "abs": (lambda xp, a: xp.abs(a), [x(5)]),
        "sum": (lambda xp, a: xp.sum(a, axis=(0, 2), keepdims=True) + a.sum(-1)[None, :, :, None], [x(2, 3, 4)]),
        "mean": (lambda xp, a: xp.mean(a, axis=1) * a.mean(), [x(2, 3, 4)]),
        "max": (lambda xp, a: xp.max(a, axis=-1, keepdims=True) + a.max(), [x(2, 3, 4)]),
        "min": (lambda xp, a: xp.min(a, axis=0), [x(2, 3, 4)]),
        "matmul": (lambda xp, a, b, v, u: xp.sum(a @ b) + xp.sum((a @ v) @ b.T) + (v @ b) @ u + v @ v
                   + xp.sum(u @ a) + xp.sum(xp.swapaxes(a, -1, -2) @ u) + xp.sum(a @ xp.reshape(a, (2, 5, 4, 3))),
                   [x(2, 5, 3, 4), x(4, 3), x(4), x(3)]),
        "reshape": (lambda xp, a: xp.reshape(a, (4, -1)) + a.reshape(4, 6) + a.reshape((4, 6)), [x(2, 3, 4)]),
        "transpose": (lambda xp, a: xp.transpose(a, (2, 0, 1)) + a.transpose((2, 0, 1)) + a.T.transpose((0, 2, 1)),
                      [x(2, 3, 4)]),
        "swapaxes": (lambda xp, a: xp.swapaxes(a, 0, -1) * a.swapaxes(0, 2), [x(2, 3, 4)]),
        "expand_dims": (lambda xp, a: xp.expand_dims(a, 1), [x(2, 3)]),
        "squeeze": (lambda xp, a: xp.squeeze(a, 1), [x(2, 1, 3)]),
        "broadcast_to": (lambda xp, a: xp.broadcast_to(a, (2, 3)), [x(2, 1)]),  # anp: no new leading axes
        "concatenate": (lambda xp, a, b: xp.concatenate([a, b, a], axis=-1), [x(2, 3), x(2, 4)]),
        "stack": (lambda xp, a, b: xp.stack([a, b, a], axis=1), [x(2, 3), x(2, 3)]),
        "split": (lambda xp, a: xp.split(a, [1], axis=1)[1] * xp.split(a, 3, axis=1)[0], [x(2, 3)]),
        "tril": (lambda xp, a: xp.tril(a) + xp.triu(a, 1) * 2.0, [x(3, 3)]),
        "triu": (lambda xp, a: xp.triu(a, -1), [x(3, 4)]),
        "getitem": (lambda xp, a, i: xp.sum(a[1:, None, ::2]) + a[0] + xp.sum(a[i] * 2.0, axis=0) + a[-1, 1],
                    [x(3, 4), None]),
    }
    fn, args = table[name]
    if name == "getitem":
        args[1] = np.array([0, 2, 2])  # a repeated index: the VJP must add both
    return fn, args


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE + STRUCTURAL if n != "astype"])
@settings(max_examples=3)
@given(seed=seeds)
def test_namespace_op_matches_autograd_numpy(name, seed):
    fn, args = _case(name, np.random.default_rng(seed))
    with use_backend(FAKE) as fake:
        dev = [None if a is None else from_numpy(a) for a in args]
        if name == "getitem":
            dev[1] = from_numpy(args[1])
    probe = np.random.default_rng(seed + 1).normal(size=np.shape(fn(anp, *args)))
    for i, a in enumerate(args):
        if a is None or a.dtype.kind != "f":
            continue
        def scalar(xp, arrays, v, probe_):
            return xp.sum(fn(xp, *arrays[:i], v, *arrays[i + 1:]) * probe_)
        with use_backend(FAKE):
            value = fn(fake.xp, *dev)
            g = grad(lambda v: scalar(fake.xp, dev, v, from_numpy(probe)))(dev[i])
            tangent = np.random.default_rng(seed + 2).normal(size=a.shape)
            j = make_jvp(lambda v: fn(fake.xp, *dev[:i], v, *dev[i + 1:]))(dev[i])(from_numpy(tangent))[1]
        np.testing.assert_allclose(fakecupy.asnumpy(value),
                                   fn(anp, *args), **EXACT)
        np.testing.assert_allclose(fakecupy.asnumpy(g), grad(lambda v: scalar(anp, args, v, probe))(a),
                                   err_msg=f"VJP of {name}, argument {i}", **EXACT)
        np.testing.assert_allclose(fakecupy.asnumpy(j), make_jvp(lambda v: fn(anp, *args[:i], v, *args[i + 1:]))(a)(
            tangent)[1], err_msg=f"JVP of {name}, argument {i}", **EXACT)


def test_astype_casts_values_gradients_and_tangents():
    """(autograd.numpy defines no JVP for astype, so it is checked here on its own.)"""
    a = np.random.default_rng(0).normal(size=5)
    with use_backend(FAKE) as fake:
        x, probe = from_numpy(a), from_numpy(np.arange(5.0) / 7)
        value = fake.xp.astype(x, np.float32)
        g = grad(lambda v: fake.xp.sum(v.astype(np.float32) * probe.astype(np.float32)))(x)
        j = make_jvp(lambda v: v.astype(np.float32))(x)(probe)[1]
    assert value.dtype == np.float32 and g.dtype == np.float64 and j.dtype == np.float32
    np.testing.assert_array_equal(fakecupy.asnumpy(value), a.astype(np.float32))
    np.testing.assert_array_equal(fakecupy.asnumpy(g), (np.arange(5.0) / 7).astype(np.float32))
    np.testing.assert_array_equal(fakecupy.asnumpy(j), (np.arange(5.0) / 7).astype(np.float32))


def test_unsupported_op_names_the_supported_ones():
    with use_backend(FAKE) as fake, pytest.raises(AttributeError, match="supported: add"):
        fake.xp.einsum

# ---------------------------------------------------------------- the model on the stand-in


@given(case=model_and_tokens())
def test_forward_cache_and_gradients_match_numpy(case):
    cfg, params, tokens = case
    assume(tokens.shape[1] >= 2)  # the loss needs a next token
    hooks = {"blocks.0.hook_resid_post": lambda h, name: h * 1.5}
    names = ["blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_post"]
    logits, cache = run_with_cache(params, tokens, cfg, names=names, hooks=hooks)
    g = grad(loss_fn)(params, tokens, cfg, hooks=hooks)
    with use_backend(FAKE):
        p, t = on_fake(params), from_numpy(tokens)
        with count_transfers() as n:
            logits_f, cache_f = run_with_cache(p, t, cfg, names=names, hooks=hooks)
            g_f = grad(loss_fn)(p, t, cfg, hooks=hooks)
        assert type(logits_f) is FakeArray and n["implicit"] == 0 and n["to_device"] == 0
    assert_trees_close(logits_f, logits)
    assert_trees_close(cache_f, cache)
    assert_trees_close(g_f, g)


@given(seed=seeds, preset=st.sampled_from(["llama", "gpt2"]))
def test_float32_stays_float32_on_the_stand_in(seed, preset):
    cfg = Config.llama(dtype="float32") if preset == "llama" else Config.gpt2(dtype="float32")
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, (2, 7))
    with use_backend(FAKE):
        params = init_params(cfg, seed % 1000, std=0.3)
        g = grad(loss_fn)(params, from_numpy(tokens), cfg)
    assert all(leaf.dtype == np.float32 for _, leaf in named_leaves(g))
    with use_backend("numpy"):
        assert_trees_close(g, grad(loss_fn)(init_params(cfg, seed % 1000, std=0.3), tokens, cfg), **EXACT32)


def test_a_training_step_makes_no_hidden_transfers():
    """fit's loop: per step one explicit read-back in fit (loss + finite flag) and one in the
    token check (loss_fn checks once for itself and forward), plus one per run checking the
    initial and one checking the final parameters; the batch already lives on the device;
    nothing implicit."""
    cfg, steps = Config.llama(), 3
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (4, 12))
    objective = lambda p, batch: loss_fn(p, batch, cfg)
    expected = fit(objective, init_params(cfg, 0), lambda s: tokens, steps=steps, lr=1e-2, clip=1.0)
    with use_backend(FAKE):
        params, batch = init_params(cfg, 0), from_numpy(tokens)
        with count_transfers(strict=True) as n:
            result = fit(objective, params, lambda s: batch, steps=steps, lr=1e-2, clip=1.0)
    assert dict(n) == {"to_device": 0, "to_host": 2 * steps + 2, "implicit": 0}
    np.testing.assert_allclose(result.losses, expected.losses, **EXACT)
    assert_trees_close(result.params, expected.params)

# ---------------------------------------------------------------- adapters and theory on the stand-in


@pytest.mark.parametrize("method", ["lowrank", "lora", "loreft"])
def test_adapter_gradients_match_numpy(method):
    A = pytest.importorskip("ministeer.adapters")
    cfg = Config.llama()
    rng = np.random.default_rng(1)
    batch = {"tokens": rng.integers(0, cfg.vocab_size, (2, 9)), "mask": (rng.random((2, 9)) < 0.6) * 1.0}
    make = {"lowrank": lambda: A.lowrank(cfg, r=2, init_scale=0.5), "lora": lambda: A.lora(cfg, r=2),
            "loreft": lambda: A.loreft(cfg, r=2)}[method]
    results = []
    for name in ("numpy", FAKE):
        with use_backend(name):
            params, adapter = init_params(cfg, 0, std=0.3), make()
            trainable = tree_map(lambda a: a + 0.1, A.trainable_of({method: adapter}))  # off the zero init
            objective = A.objective(params, {method: adapter}, cfg)
            b = batch if name == "numpy" else on_fake(batch)
            results.append((objective(trainable, b, 0), grad(objective)(trainable, b, 0)))
    assert_trees_close(results[1], results[0])


def test_first_order_claim_quantities_match_numpy():
    theory = pytest.importorskip("ministeer.theory.first_order")
    cfg = Config.llama()
    tokens = np.random.default_rng(2).integers(0, cfg.vocab_size, (2, 6))
    out = []
    for name in ("numpy", FAKE):
        with use_backend(name):
            params = init_params(cfg, 3, std=0.3)
            delta = theory.random_update(params, "model.layers.0.mlp.*", seed=4, scale=1.0)
            t = tokens if name == "numpy" else from_numpy(tokens)
            base, jvp = theory.first_order_shift(params, delta, t, cfg, "blocks.1.hook_resid_post")
            errs, floor, slope = theory.site_remainders(params, delta, t, cfg, "blocks.1.hook_resid_post",
                                                        (1e-2, 1e-3, 1e-4))
            out.append((base, jvp, errs))
    assert_trees_close(out[1][:2], out[0][:2])
    np.testing.assert_allclose(out[1][2], out[0][2], rtol=1e-6)  # remainders: differences of close values
    assert abs(slope - 2.0) < 0.2
