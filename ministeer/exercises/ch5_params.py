"""Checkers for docs/05-parameterizations.md: the post-block adapter, LoReFT, parameter counts."""
import autograd.numpy as anp
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from ..model import forward, run_with_cache
from .common import call, expect_close, fail, host, passed, rng_for, tiny_model


def _silu(x):
    return x / (1.0 + anp.exp(-x))


def check_post_block_adapter(post_block_adapter):
    """Exercise 5.1: ``post_block_adapter(h, D, U, phi)`` = h + U phi(D h) at every token, eq. (5.3).

    ``h`` is ``[B, T, d]``, ``D`` is ``[r, d]`` (reads), ``U`` is ``[d, r]`` (writes), ``phi``
    an elementwise function. Also checked inside a real forward pass as a
    ``blocks.0.hook_resid_post`` hook, and that ``U = 0`` is an exact no-op.
    """
    rng = rng_for(8)
    B, T, d, r = 2, 3, 6, 2
    h, D, U = rng.normal(size=(B, T, d)), rng.normal(size=(r, d)), rng.normal(size=(d, r))
    for phi in (_silu, lambda x: x):
        shift = phi(h @ D.T) @ U.T
        got = call("5.1", post_block_adapter, *map(from_numpy, (h, D, U)), phi,
                   on_error="D is [r, d] and U is [d, r]: per token, D h is h @ D.T ([B, T, r]).")
        expect_close("5.1", got, h + shift, what="the adapted activation", atol=1e-12, diagnoses=[
            (shift, "missed skip connection: the hook must return the new activation h + U phi(D h), "
                    "not the shift alone."),
            (h - shift, "sign error: the adapter adds U phi(D h)."),
            (h + phi(h @ D.T @ U.T) if phi is _silu else None,
             "phi acts in the r-dimensional bottleneck, between D and U: U phi(D h), not phi(U D h)."),
            (h + phi(h @ U @ D) if phi is _silu else None,
             "transposed matrices: D reads (r x d), U writes (d x r); the shift is phi(h @ D.T) @ U.T."),
        ])
    # as a hook in a real forward pass, and U = 0 is a no-op
    cfg, params, tokens = tiny_model("llama", seed=8)
    D, U = rng.normal(size=(r, cfg.d_model)), rng.normal(size=(cfg.d_model, r))
    site = "blocks.0.hook_resid_post"
    hook = lambda act, name: post_block_adapter(act, from_numpy(D), from_numpy(U), _silu)
    _, base = run_with_cache(params, tokens, cfg, names=[site])
    _, steered = run_with_cache(params, tokens, cfg, names=[site], hooks={site: hook})
    want = host(base[site]) + _silu(host(base[site]) @ D.T) @ U.T
    expect_close("5.1", steered[site], want, what="the post-block activation inside forward()", atol=1e-12)
    zero = lambda act, name: post_block_adapter(act, from_numpy(D), from_numpy(np.zeros_like(U)), _silu)
    if not np.array_equal(host(forward(params, tokens, cfg, hooks={site: zero})), host(forward(params, tokens, cfg))):
        fail("5.1", "with U = 0 the adapter must be an exact no-op (bitwise equal logits).")
    return passed("5.1", "the post-block low-rank adapter", "h + U phi(D h); U = 0 is an exact no-op.")


def check_loreft(loreft):
    """Exercise 5.2: ``loreft(h, R, W, b)`` = h + R^T (W h + b - R h), pyreft's LoReFT, eq. (5.5).

    ``h`` is ``[N, d]``, ``R`` is ``[r, d]`` with orthonormal rows, ``W`` is ``[r, d]``,
    ``b`` is ``[r]``. Also checked: with W = R and b = 0 it is the identity.
    """
    rng = rng_for(9)
    N, d, r = 4, 6, 2
    R = np.linalg.qr(rng.normal(size=(d, r)))[0].T  # orthonormal rows
    h, W, b = rng.normal(size=(N, d)), rng.normal(size=(r, d)), rng.normal(size=r)
    edit = (h @ W.T + b - h @ R.T) @ R
    got = call("5.2", loreft, *map(from_numpy, (h, R, W, b)),
               on_error="R and W are [r, d], h is [N, d]: R h per row is h @ R.T, and R^T z is z @ R.")
    expect_close("5.2", got, h + edit, what="the LoReFT output", atol=1e-12, diagnoses=[
        (edit, "missed skip connection: LoReFT returns h plus the edit."),
        (h - edit, "sign error: the edit is R^T (W h + b - R h); it replaces R h by W h + b."),
        (h + (h @ W.T + b) @ R, "that is DiReFT: LoReFT also subtracts R h, so the edit *replaces* "
                                 "the component of h in row(R)."),
        (h + (h @ W.T - h @ R.T) @ R, "the bias b is missing."),
    ])
    identity = call("5.2", loreft, *map(from_numpy, (h, R, R, np.zeros(r))))
    expect_close("5.2", identity, h, what="LoReFT with W = R, b = 0", atol=1e-12)
    return passed("5.2", "LoReFT", "h + R^T (W h + b - R h); with W = R, b = 0 it is the identity.")


def check_post_block_param_count(post_block_param_count):
    """Exercise 5.3: ``post_block_param_count(d_model, n_layers, rank)``, eq. (5.7).

    Trainable scalars of a post-block adapter at every layer: ``2 r d L`` for rank ``r``
    (D and U, no biases) and ``d L`` for one vector per layer (``rank=None``).
    On Llama-3.2-1B's shapes that is the paper's 0.042%.
    """
    for d, L in ((2048, 16), (7, 3), (2560, 36)):
        for r in (8, 1):
            got = call("5.3", post_block_param_count, d, L, r)
            want = 2 * r * d * L
            for wrong, hint in ((r * d * L, "each layer has two matrices, D (r x d) and U (d x r)."),
                                (2 * r * d, "one adapter per layer: multiply by the number of layers."),
                                (2 * r * d * (L - 1), "off by one: every one of the L layers gets an adapter."),
                                (2 * r * d * L + r * L + d * L, "the paper's adapter has no biases.")):
                if got != want and got == wrong:
                    fail("5.3", f"count for d={d}, L={L}, r={r} is {got}, expected {want}. Hint: {hint}")
            if got != want:
                fail("5.3", f"count for d={d}, L={L}, r={r} is {got}, expected {want}.")
        got = call("5.3", post_block_param_count, d, L, None)
        if got != d * L:
            fail("5.3", f"one vector per layer (rank=None) for d={d}, L={L}: got {got}, expected {d * L}.")
    llama_1b = 1_235_814_400  # Llama-3.2-1B's parameter count (tied embeddings)
    share = 100 * post_block_param_count(2048, 16, 8) / llama_1b
    return passed("5.3", "post-block parameter counts", f"Rank 8 on Llama-3.2-1B: {share:.3f}% of the model.")
