"""The GEMM floor of a training step: its matrix products alone, on the same shapes and layouts.

A training step of ``bench`` (``value_and_grad(loss_fn)`` w.r.t. every parameter) does, per
linear layer ``y = x W^T`` over N = B*T rows, three products: the forward, ``dx = dy W`` and
``dW = (x^T dy)^T``; per attention layer, the scores ``q k^T`` and ``P v`` forward and two
products back for each; the unembedding is one more linear layer and the embedding's VJP is a
one-hot product (``ops.embedding``). Timing exactly those, on random arrays of the step's
dtype, is the floor of this design: everything above it is elementwise work and bookkeeping.
"""
import numpy as np  # host side: the floor is measured on the numpy backend

from ..fused import weight_paths


def linear_shapes(cfg):
    """``(d_in, d_out)`` of every linear layer of the model, unembedding included."""
    d, kv, m = cfg.d_model, cfg.n_kv_heads * cfg.d_head, cfg.d_mlp
    size = {"q_proj": (d, d), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (d, d),
            "gate_proj": (d, m), "up_proj": (d, m), "down_proj": (m, d)}
    layer = [size[path[1]] for path in weight_paths(cfg) if path[-1] == "weight" and len(path) == 3]
    return layer * cfg.n_layers + [(d, cfg.vocab_size)]


def step_products(cfg, B, T, rng=None):
    """Zero-argument callables, one per matrix product of a training step, on fresh arrays."""
    rng = rng or np.random.default_rng(0)
    dt = np.dtype(cfg.dtype)
    draw = lambda *shape: rng.standard_normal(shape).astype(dt)
    N, H, K, dh = B * T, cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    products = []
    for d_in, d_out in linear_shapes(cfg):
        x, W, g = draw(N, d_in), draw(d_out, d_in), draw(N, d_out)
        products += [lambda x=x, W=W: x @ W.T, lambda g=g, W=W: g @ W, lambda x=x, g=g: (x.T @ g).T]
    q5, k5, v5 = draw(B, K, H // K, T, dh), draw(B, K, 1, T, dh), draw(B, K, 1, T, dh)
    p5, dz5 = draw(B, K, H // K, T, T), draw(B, K, H // K, T, dh)
    attention = [lambda: q5 @ np.swapaxes(k5, -1, -2), lambda: p5 @ v5,  # forward
                 lambda: dz5 @ np.swapaxes(v5, 3, 4), lambda: np.swapaxes(p5, 3, 4) @ dz5,  # P v, back
                 lambda: p5 @ k5, lambda: np.swapaxes(p5, -1, -2) @ q5]  # the scores, back
    products += attention * cfg.n_layers
    onehot, g = draw(N, cfg.vocab_size), draw(N, cfg.d_model)
    products.append(lambda: onehot.T @ g)  # the embedding's VJP
    if cfg.pos == "learned":  # and the learned positions'
        positions, g_pos = draw(T, cfg.n_ctx), draw(T, cfg.d_model)
        products.append(lambda: positions.T @ g_pos)
    return products


def run_products(products):
    for product in products:
        product()
