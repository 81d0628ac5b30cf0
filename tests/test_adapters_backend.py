"""Adapters on the GPU code path (the strict CPU stand-in for CuPy): same numbers, no hidden syncs."""
import numpy as np
import pytest

from ministeer import adapters as A, from_numpy, use_backend
from ministeer.backend import fake as fakecupy
from ministeer.backend.fake import count_transfers
from ministeer.model import Config, init_params

fakecupy.register()
CFG = Config.gpt2(vocab_size=16, d_model=16, n_heads=2, d_mlp=32, n_ctx=8)


def _batch():
    mask = np.zeros((2, 6))
    mask[:, 3:] = 1
    return {"tokens": np.random.default_rng(0).integers(0, 16, (2, 6)), "mask": mask}


@pytest.mark.parametrize("name", sorted(A.METHODS))
def test_training_matches_numpy_and_the_loss_has_no_hidden_transfer(name):
    losses = {}
    for backend in ("numpy", "fakecupy"):
        with use_backend(backend):
            params = init_params(CFG, 0, std=0.3)
            batch = {k: from_numpy(v) for k, v in _batch().items()}
            adapters, result = A.train_method(name, params, CFG, [batch], steps=2, lr=1e-2)
            losses[backend] = result.losses
            if backend == "fakecupy":
                with count_transfers(strict=True):  # forward + loss with every adapter kind, and the projection
                    A.adapted_loss(params, adapters, batch["tokens"], CFG, mask=batch["mask"])
                    A.orth_projector("output")(A.trainable_of(adapters), 0) if "steer" in adapters and "lora" in adapters else None
    np.testing.assert_allclose(losses["fakecupy"], losses["numpy"], rtol=1e-12)
