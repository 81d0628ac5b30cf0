"""Decoupled weight decay follows the learning-rate schedule (AdamW as in PyTorch: p -= lr_t wd p)."""
import math

import autograd.numpy as anp
import numpy as np
import pytest

from tolerances import EXACT
from ministeer.train import fit


@pytest.mark.parametrize("schedule,warmup", [("linear", 0), ("cosine", 2)])
def test_weight_decay_is_scaled_by_the_schedule(schedule, warmup):
    """Zero gradient: only the decay acts, w <- w (1 - lr_t wd) with lr_t the scheduled rate,
    written out here (linear: 1 - t/T; cosine after a linear warmup). Rejects a decay that
    uses the peak rate at every step (the constant-schedule test cannot tell them apart)."""
    steps, lr, wd = 6, 0.1, 0.3
    def rate(t):
        if t < warmup:
            return lr * (t + 1) / warmup
        progress = (t - warmup) / (steps - warmup)
        return lr * ((1 - progress) if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress)))
    w0 = np.array([1.0, -3.0, 0.5])
    result = fit(lambda w, b: 0.0 * anp.sum(w), w0, lambda s: None, steps=steps, lr=lr, weight_decay=wd,
                 schedule=schedule, warmup=warmup)
    want = w0 * np.prod([1 - rate(t) * wd for t in range(steps)])
    np.testing.assert_allclose(result.params, want, **EXACT)
    assert not np.allclose(want, w0 * (1 - lr * wd) ** steps)  # the two readings differ here
