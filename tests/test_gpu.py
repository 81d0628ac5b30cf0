"""The real GPU: forward, gradients and a few training steps on CuPy against NumPy.

Skipped unless CuPy imports and sees a CUDA device (run ``scripts/gpu_check.sh``). The
same code paths run on the CPU stand-in in ``tests/test_backend.py`` on every CI run;
here we check that real CuPy kernels agree. GPU reductions and GEMMs sum in another
order than NumPy's, so float64 agrees to ~1e-13 relative, not bitwise: ``GPU64`` below.
"""
import numpy as np
import pytest
from autograd import grad

from ministeer import from_numpy, to_numpy, use_backend
from ministeer.model import Config, init_params, loss_fn, run_with_cache
from ministeer.train import fit
from ministeer.tree import named_leaves, tree_map


def _has_device():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _has_device(), reason="needs CuPy and a CUDA device")]

# float64 on the device: each side is a few hundred reduction steps over O(1) values,
# summed in a different order (cuBLAS / CUB tree reductions) -> ~1e-15 x depth.
GPU64 = dict(rtol=1e-10, atol=1e-12)
GPU32 = dict(rtol=2e-4, atol=2e-5)  # float32: TF32 is off in CuPy by default; a few ulps x depth


def _assert_close(device_tree, host_tree, **tol):
    for (name, d), (_, h) in zip(named_leaves(device_tree), named_leaves(host_tree), strict=True):
        np.testing.assert_allclose(to_numpy(d) if not isinstance(d, np.ndarray) else d, h, err_msg=name, **tol)


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_and_gradients_match_numpy(preset, dtype):
    cfg = getattr(Config, preset)(d_model=64, n_heads=4, n_layers=2, dtype=dtype)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, (4, 32))
    tol = GPU64 if dtype == "float64" else GPU32
    params = init_params(cfg, 0, std=0.1)
    logits, cache = run_with_cache(params, tokens, cfg, names="blocks.*.hook_resid_post")
    g = grad(loss_fn)(params, tokens, cfg)
    with use_backend("cupy"):
        p, t = init_params(cfg, 0, std=0.1), from_numpy(tokens)
        logits_d, cache_d = run_with_cache(p, t, cfg, names="blocks.*.hook_resid_post")
        g_d = grad(loss_fn)(p, t, cfg)
        _assert_close(logits_d, logits, **tol)
        _assert_close(cache_d, cache, **tol)
        _assert_close(g_d, g, **tol)
        assert all(to_numpy(leaf).dtype == np.dtype(dtype) for _, leaf in named_leaves(g_d))


def test_a_few_training_steps_match_numpy():
    cfg = Config.llama(d_model=64, n_heads=4, n_layers=2)
    tokens = np.random.default_rng(1).integers(0, cfg.vocab_size, (8, 32))
    objective = lambda p, batch: loss_fn(p, batch, cfg)
    expected = fit(objective, init_params(cfg, 0), lambda s: tokens, steps=5, lr=1e-2, clip=1.0)
    with use_backend("cupy"):
        batch = from_numpy(tokens)
        result = fit(objective, init_params(cfg, 0), lambda s: batch, steps=5, lr=1e-2, clip=1.0)
        np.testing.assert_allclose(result.losses, expected.losses, **GPU64)
        _assert_close(result.params, expected.params, rtol=1e-8, atol=1e-10)  # Adam divides by sqrt(v)
    assert result.losses[-1] < result.losses[0]


def test_adapter_gradients_match_numpy():
    A = pytest.importorskip("ministeer.adapters")
    cfg = Config.llama(d_model=64, n_heads=4, n_layers=2)
    tokens = np.random.default_rng(2).integers(0, cfg.vocab_size, (4, 16))
    out = []
    for name in ("numpy", "cupy"):
        with use_backend(name):
            params, steer = init_params(cfg, 0, std=0.1), A.lowrank(cfg, r=4, init_scale=0.5)
            trainable = tree_map(lambda a: a + 0.1, A.trainable_of({"steer": steer}))
            objective = A.objective(params, {"steer": steer}, cfg)
            batch = tokens if name == "numpy" else from_numpy(tokens)
            out.append(tree_map(lambda a: to_numpy(a), grad(objective)(trainable, batch, 0)))
    _assert_close(out[1], out[0], **GPU64)
