"""One transformer block as one autograd primitive: the backward pass derived by hand.

``model.block`` is the reference: about 60 autograd nodes per block, each a few
microseconds of Python bookkeeping around GEMMs of tens of microseconds at toy sizes.
``block`` here computes the same block with the plain array module, keeps the
activations its backward needs, and gives autograd one node whose VJP runs the
block's VJPs in reverse (the ops' own rules for the norms, SwiGLU/GELU, RoPE and the
attention pattern; the GEMM and reshape rules written out as autograd's own).

Every array operation, and the order in which gradients meeting at one array are summed,
is autograd's on the reference path, so the fused numbers are *bitwise* the hooked ones
(``tests/test_fused.py``); the chapter ``docs/09-block-backward.md`` derives each gradient.

``model.forward`` uses it for a layer whose inner sites carry no hook
(``model.fused_layers``); boundary sites (``hook_resid_pre``/``hook_resid_post``) and
weight adapters (LoRA's ``W + s B A`` is formed outside, so its gradient reaches A and B
through autograd) keep it. Forward-mode derivatives (``make_jvp``) go through the reference
composition, so they are exact too. Only on the NumPy backend: on CuPy the hooked path runs.
"""
import contextlib
import functools
import os

from autograd import make_jvp
from autograd.extend import SparseObject, defjvp, defjvp_argnums, defvjp, defvjp_argnums, primitive, vspace
from autograd.tracer import getval, isbox

from . import ops
from .backend import get_backend, raw

# ---------------------------------------------------------------- the switch

_enabled = os.environ.get("MINISTEER_FUSED", "1") != "0"


def fused_enabled():
    """Whether ``model.forward`` may use the fused block (default on; ``MINISTEER_FUSED=0`` turns it off)."""
    return _enabled and get_backend().name == "numpy"  # the GPU path keeps the reference's primitives


@contextlib.contextmanager
def use_fused(enabled):
    """``with use_fused(False): ...`` runs every block on the hooked reference path."""
    global _enabled
    before, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = before


@functools.lru_cache(maxsize=64)
def weight_paths(cfg):
    """The block's parameters as paths into a layer's dict, in the order ``block`` takes them."""
    norm = ("weight", "bias") if cfg.norm == "layer" else ("weight",)
    lin = ("weight", "bias") if cfg.bias else ("weight",)
    paths = [("input_layernorm", leaf) for leaf in norm]
    paths += [("self_attn", proj, leaf) for proj in ("q_proj", "k_proj", "v_proj", "o_proj") for leaf in lin]
    paths += [("post_attention_layernorm", leaf) for leaf in norm]
    mlp = ("gate_proj", "up_proj", "down_proj") if cfg.mlp == "swiglu" else ("up_proj", "down_proj")
    return tuple(paths + [("mlp", proj, leaf) for proj in mlp for leaf in lin])


def _get(p, path):
    for key in path:
        p = p[key]
    return p


def block(h, p, cfg, rope_tables, reference):
    """The block's output for input ``h`` [B, T, d] and layer parameters ``p``, as one node.

    ``reference(h, weights)`` is the hooked block on the same weights (``model.block``); it
    defines the forward-mode derivative. Without any traced argument no residuals are kept.
    """
    if isbox(p):  # the whole layer is differentiated (full fine-tuning): pass it as one argument,
        # as indexing a traced dict costs autograd a node and a walk over the dict per index
        return _block_tree(h, p, cfg=cfg, tables=rope_tables, reference=reference)
    paths = weight_paths(cfg)
    weights = [_get(p, path) for path in paths]
    if not (isbox(h) or any(isbox(w) for w in weights)):
        return _forward(h, dict(zip(paths, weights)), cfg, rope_tables)[0]
    return _block(h, *weights, cfg=cfg, tables=rope_tables, reference=reference)

# ---------------------------------------------------------------- forward, keeping what the VJP reads


def _linear(x, W, b):
    """model.linear on plain arrays: (x2, y) with x2 the flattened input the VJP needs."""
    x2 = x.reshape(-1, x.shape[-1])
    y = x2 @ W.T
    if b is not None:
        y = y + b
    return x2, y.reshape(x.shape[:-1] + (y.shape[-1],))


def _norm(x, W, prefix, cfg):
    if cfg.norm == "rms":
        return ops.rms_norm.fun(x, W[(prefix, "weight")], cfg.norm_eps)
    return ops.layer_norm.fun(x, W[(prefix, "weight")], W[(prefix, "bias")], cfg.norm_eps)


def _lin(W, module, proj):
    return W[(module, proj, "weight")], W.get((module, proj, "bias"))


def _forward(h, W, cfg, tables):
    """(output, saved): model.block with no hooks, operation for operation."""
    B, T, _ = h.shape
    H, K, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    s = {"h": h}
    x = _norm(h, W, "input_layernorm", cfg)
    s["xq"], q = _linear(x, *_lin(W, "self_attn", "q_proj"))
    s["xk"], k = _linear(x, *_lin(W, "self_attn", "k_proj"))
    s["xv"], v = _linear(x, *_lin(W, "self_attn", "v_proj"))
    q, k, v = q.reshape(B, T, H, dh), k.reshape(B, T, K, dh), v.reshape(B, T, K, dh)
    if tables is not None:
        cos, sin = tables[0][:T], tables[1][:T]
        q, k = ops.rope.fun(q, cos, sin), ops.rope.fun(k, cos, sin)
    s["qh"], s["kh"] = raw.transpose(q, (0, 2, 1, 3)), raw.transpose(k, (0, 2, 1, 3))
    s["pattern"] = ops.attention_pattern.fun(s["qh"], s["kh"], 1.0 / dh ** 0.5)  # [B, H, T, T]
    s["v_5d"] = raw.transpose(v, (0, 2, 1, 3)).reshape(B, K, 1, T, dh)
    s["p_5d"] = s["pattern"].reshape(B, K, H // K, T, T)
    z = raw.transpose((s["p_5d"] @ s["v_5d"]).reshape(B, H, T, dh), (0, 2, 1, 3))  # [B, T, H, dh]
    s["xo"], attn = _linear(z.reshape(B, T, H * dh), *_lin(W, "self_attn", "o_proj"))
    h = h + attn
    s["mid"] = h
    x = _norm(h, W, "post_attention_layernorm", cfg)
    if cfg.mlp == "swiglu":
        s["xg"], s["gate"] = _linear(x, *_lin(W, "mlp", "gate_proj"))
        s["xu"], s["up"] = _linear(x, *_lin(W, "mlp", "up_proj"))
        hidden = ops.swiglu.fun(s["gate"], s["up"])
    else:
        s["xu"], s["up"] = _linear(x, *_lin(W, "mlp", "up_proj"))
        hidden = ops.gelu.fun(s["up"])
    s["xd"], out = _linear(hidden, *_lin(W, "mlp", "down_proj"))
    return h + out, s


_saved = [None]  # (ans, saved) of the last traced forward: autograd makes the VJP right after it


@primitive
def _block(h, *weights, cfg, tables, reference):
    """The block on the weights one by one (``weight_paths`` order): LoRA's merged weights, a few
    trained leaves, or none (steering trains only what the block's input depends on)."""
    W = dict(zip(weight_paths(cfg), weights))
    out, saved = _forward(h, W, cfg, tables)
    _saved[0] = (out, saved)
    return out


@primitive
def _block_tree(h, p, *, cfg, tables, reference):
    """The block on the layer's whole parameter dict ``p``; its gradient is a dict like ``p``."""
    out, saved = _forward(h, {path: _get(p, path) for path in weight_paths(cfg)}, cfg, tables)
    _saved[0] = (out, saved)
    return out

# ---------------------------------------------------------------- backward: the VJPs in reverse
# Each line is the VJP of one node of model.block, as autograd would run it:
# (equation numbers: docs/09-block-backward.md)
#   y = x2 W^T + b:   dx2 = dy W,   dW = (x2^T dy)^T,   db = sum over rows of dy         (9.1)
#   residual adds: the gradient flows to both summands unchanged; reads add up           (9.2)
#   norms (9.3), SwiGLU (9.4), softmax and scores (9.6): the ops' own VJP helpers
#   z_5d = P_5d v_5d (GQA): dP_5d = dz_5d v_5d^T,   dv_5d = sum over the group of P_5d^T dz_5d              (9.5)
#   reshape / transpose: the inverse reshape / transpose of the gradient


def _sum_to_shape(x, shape):
    """autograd's unbroadcast: sum leading axes away, then every axis the target has as 1."""
    while x.ndim > len(shape):
        x = raw.sum(x, axis=0)
    for axis, size in enumerate(shape):
        if size == 1:
            x = raw.sum(x, axis=axis, keepdims=True)
    return x


def _linear_vjp(g, x2, W, b, need_w, need_b, x_shape):
    """(dx, dW, db) of model.linear (9.1); a gradient nobody asked for is not computed."""
    g2 = g.reshape(-1, g.shape[-1])
    dx = (g2 @ W).reshape(x_shape) if x_shape is not None else None
    dW = (x2.T @ g2).T if need_w else None
    db = _sum_to_shape(g2, b.shape) if need_b else None
    return dx, dW, db


def _norm_vjp(g, x, W, prefix, cfg):
    """{0: dx, 1: dgain, 2: dbias} thunks of the block's RMSNorm or LayerNorm."""
    w = W[(prefix, "weight")]
    if cfg.norm == "rms":
        return ops._rms_grads(g, None, x, w, cfg.norm_eps)
    return ops._ln_grads(g, None, x, w, W[(prefix, "bias")], cfg.norm_eps)


def _backward(g, s, W, cfg, tables, need):
    """{path or "h": gradient} for the block's input and the weights in ``need``."""
    B, T, d = s["h"].shape
    H, K, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    grads = {}

    def linear(g, x2, x_shape, module, proj):
        Wm, b = _lin(W, module, proj)
        dx, dW, db = _linear_vjp(g, x2, Wm, b, (module, proj, "weight") in need,
                                 (module, proj, "bias") in need, x_shape)
        grads[(module, proj, "weight")], grads[(module, proj, "bias")] = dW, db
        return dx

    def norm(g, x, prefix, want_x=True):
        thunks = _norm_vjp(g, x, W, prefix, cfg)
        grads[(prefix, "weight")] = thunks[1]() if (prefix, "weight") in need else None
        if cfg.norm == "layer":
            grads[(prefix, "bias")] = thunks[2]() if (prefix, "bias") in need else None
        return thunks[0]() if want_x else None

    def mlp(g):  # out = mid + W_d act(W x2): returns the gradient at x2
        m = s["gate"].shape[-1] if cfg.mlp == "swiglu" else s["up"].shape[-1]
        d_hidden = linear(g, s["xd"], s["xd"].shape[:-1] + (m,), "mlp", "down_proj").reshape(B, T, m)
        if cfg.mlp == "swiglu":
            act = ops._swiglu_grads(d_hidden, None, s["gate"], s["up"])  # (9.4)
            d_gate, d_up = act[0](), act[1]()
            dx2 = linear(d_gate, s["xg"], (B, T, d), "mlp", "gate_proj")
            return dx2 + linear(d_up, s["xu"], (B, T, d), "mlp", "up_proj")
        d_up = d_hidden * ops._gelu_slope(s["up"])
        return linear(d_up, s["xu"], (B, T, d), "mlp", "up_proj")

    def attention(d_mid):  # mid = h + W_o z: returns the gradients at v, k, q
        dz = linear(d_mid, s["xo"], (B, T, H * dh), "self_attn", "o_proj").reshape(B, T, H, dh)
        dz_5d = raw.transpose(dz, (0, 2, 1, 3)).reshape(B, K, H // K, T, dh)
        d_p_5d = _sum_to_shape(dz_5d @ raw.swapaxes(s["v_5d"], 3, 4), s["p_5d"].shape)  # (9.5)
        dv_5d = _sum_to_shape(raw.swapaxes(s["p_5d"], 3, 4) @ dz_5d, s["v_5d"].shape)  # sum over the query group
        dv = raw.transpose(dv_5d.reshape(B, K, T, dh), (0, 2, 1, 3))
        scores = ops._attention_grads(d_p_5d.reshape(B, H, T, T), s["pattern"], s["qh"], s["kh"], 1.0 / dh ** 0.5)
        dq, dk = raw.transpose(scores[0](), (0, 2, 1, 3)), raw.transpose(scores[1](), (0, 2, 1, 3))  # (9.6)
        if tables is not None:  # RoPE's VJP is the inverse rotation (ops.9)
            cos, sin = tables[0][:T], tables[1][:T]
            dq = dq * cos - ops._rotate_half(dq * sin)
            dk = dk * cos - ops._rotate_half(dk * sin)
        return dv.reshape(B, T, K * dh), dk.reshape(B, T, K * dh), dq.reshape(B, T, d)

    d_mid = g + norm(mlp(g), s["mid"], "post_attention_layernorm")  # (9.2)
    dv, dk, dq = attention(d_mid)
    # x1 feeds three projections; autograd adds their gradients in the order v, k, q
    want_x1 = "h" in need or any(path[0] == "input_layernorm" for path in need)
    x_shape = (B, T, d) if want_x1 else None  # only frozen weights below: skip the input's gradient
    dx1v = linear(dv, s["xv"], x_shape, "self_attn", "v_proj")
    dx1k = linear(dk, s["xk"], x_shape, "self_attn", "k_proj")
    dx1q = linear(dq, s["xq"], x_shape, "self_attn", "q_proj")
    if want_x1:
        d_h = norm(dx1v + dx1k + dx1q, s["h"], "input_layernorm", "h" in need)
        grads["h"] = d_mid + d_h if d_h is not None else None
    return grads


def _saved_for(ans, h, W, cfg, tables):
    if _saved[0] is not None and _saved[0][0] is ans:
        saved = _saved[0][1]
    else:  # not made right after its forward (never in autograd today): recompute
        saved = _forward(h, W, cfg, tables)[1]
    _saved[0] = None
    return saved


def _block_vjp(argnums, ans, args, kwargs):
    cfg, tables = kwargs["cfg"], kwargs["tables"]
    paths = weight_paths(cfg)
    W = dict(zip(paths, args[1:]))
    saved = _saved_for(ans, args[0], W, cfg, tables)
    need = {"h" if i == 0 else paths[i - 1] for i in argnums}

    def vjp(g):
        grads = _backward(g, saved, W, cfg, tables, need)
        return tuple(grads["h"] if i == 0 else grads[paths[i - 1]] for i in argnums)
    return vjp


def _like(tree, grads, prefix=()):
    """A dict shaped like ``tree`` holding ``grads[path]`` at each leaf path."""
    if isinstance(tree, dict):
        return {key: _like(sub, grads, prefix + (key,)) for key, sub in tree.items()}
    return grads[prefix]


def _block_tree_vjp(argnums, ans, args, kwargs):
    cfg, tables = kwargs["cfg"], kwargs["tables"]
    h, p = args
    W = {path: _get(p, path) for path in weight_paths(cfg)}
    saved = _saved_for(ans, h, W, cfg, tables)
    need = set(W) | ({"h"} if 0 in argnums else set())

    def vjp(g):
        grads = _backward(g, saved, W, cfg, tables, need)
        return tuple(grads["h"] if i == 0 else _like(p, grads) for i in argnums)
    return vjp


def _jvp_through(reference, argnums, tangents, args, weights_of):
    """Forward mode through the reference composition: exact, and never the hot path."""
    def as_function(moving):
        full = list(args)
        for i, value in zip(argnums, moving):
            full[i] = value
        return reference(full[0], weights_of(full))
    _saved[0] = None  # the forward's residuals: no VJP will read them
    primals = tuple(args[i] for i in argnums)
    return make_jvp(as_function)(primals)(tuple(tangents))[1]


def _block_jvp(argnums, tangents, ans, args, kwargs):
    paths = weight_paths(kwargs["cfg"])
    return _jvp_through(kwargs["reference"], argnums, tangents, args, lambda full: dict(zip(paths, full[1:])))


def _block_tree_jvp(argnums, tangents, ans, args, kwargs):
    paths = weight_paths(kwargs["cfg"])
    return _jvp_through(kwargs["reference"], argnums, tangents, args,
                        lambda full: {path: _get(full[1], path) for path in paths})


defvjp_argnums(_block, _block_vjp)
defjvp_argnums(_block, _block_jvp)
defvjp_argnums(_block_tree, _block_tree_vjp)
defjvp_argnums(_block_tree, _block_tree_jvp)

# ---------------------------------------------------------------- reading a traced parameter tree
# Indexing a dict that autograd traces as a whole (full fine-tuning, ``bench``) costs a node,
# a walk over the indexed dict to describe its gradient, and in the backward pass a zero copy
# of that dict per level of nesting. ``traced_tree`` instead takes every layer dict and every
# other leaf straight from the root: one description of the tree per forward, one zero tree per
# backward, each part's gradient added into it in place. The gradient is the same to the bit.


@primitive
def _take_path(tree, path, vs):
    return _get(tree, path)


def _untake_path(g, path, vs):
    def add_into(total):  # ``total``: autograd's own accumulator, a fresh tree it may mutate
        node, node_vs = total, vs
        for key in path[:-1]:
            node, node_vs = node[key], node_vs.shape[key]
        node[path[-1]] = node_vs.shape[path[-1]]._mut_add(node[path[-1]], g)
        return total
    return SparseObject(vs, add_into)


defvjp(_take_path, lambda ans, tree, path, vs: lambda g: _untake_path(g, path, vs))
defjvp(_take_path, lambda g, ans, tree, path, vs: _get(g, path))


def traced_tree(params):
    """A plain nested dict like ``params`` (a tree autograd traces as a whole) whose layer dicts
    and other leaves are each one node taken from the root; other trees come back unchanged."""
    if not isbox(params):
        return params
    vs = vspace(params)

    def walk(node, path):
        if isinstance(node, dict):
            return {key: walk(sub, path + (key,)) for key, sub in node.items()}
        if isinstance(node, (list, tuple)):  # the layers: each layer dict whole, for ``block``
            return [_take_path(params, path + (i,), vs) for i in range(len(node))]
        return _take_path(params, path, vs)
    return walk(getval(params), ())
