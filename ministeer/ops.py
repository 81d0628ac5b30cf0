"""Differentiable primitives with hand-derived derivatives.

Each hot op appears twice:

* ``<op>_composed``: the textbook formula in the differentiable namespace ``xp``.
  autograd differentiates it node by node. It is the *definition*.
* ``<op>``: the same function as one autograd primitive, computed with the plain
  array module ``raw``, with its reverse-mode rule (VJP) and forward-mode rule (JVP)
  derived by hand below it. It is the *fast path* and the GPU path.

``tests/test_ops.py`` checks every primitive, value, VJP and JVP, against
autograd's derivative of the composed version. Why bother: in float32 a training step
runs 1.6-2.1x faster with these (``docs/performance.md``, "What each hand-derived
primitive buys"), mostly because
one primitive replaces ~10 graph nodes over the largest activations, and because
autograd's own ``mean``/``max``/``where`` VJPs silently upcast float32 to float64.

Conventions: scales are Python floats (a NumPy scalar would promote float32 to
float64 under NumPy 2); the last axis is the feature axis. Inside a primitive, arrays
that the primitive itself just created may be updated in place (``t *= x``, ``out=t``):
autograd never sees them, and on a CPU each avoided temporary saves a pass over memory.
Inputs, ``ans`` and anything a VJP closes over are never modified.
"""
import math

from autograd.extend import defjvp, defvjp, defvjp_argnums, primitive
from autograd.tracer import getval

from .backend import raw, xp

# ---------------------------------------------------------------- helpers (raw only)


def _mean_last(x):
    return raw.sum(x, axis=-1, keepdims=True) * (1.0 / x.shape[-1])


def _sum_to(g, shape):
    """Sum a broadcast gradient back down to ``shape`` (leading axes only)."""
    extra = g.ndim - len(shape)
    return raw.sum(g.reshape((-1,) + g.shape[extra:]), axis=0) if extra else g


def _sigmoid(x):
    s = 0.5 * x  # (tanh(x/2) + 1) / 2: the overflow-free form of 1 / (1 + e^-x)
    s = raw.tanh(s, out=s)
    s += 1.0  # in place: fresh temporary
    s *= 0.5
    return s


def defvjp_shared(fun, make_grads):
    """One reverse rule for all of ``fun``'s differentiable arguments.

    ``make_grads(g, ans, *args)`` returns ``{argnum: thunk}``; intermediates the
    gradients share (a softmax VJP, a sigmoid) are computed once, in the backward pass,
    and only the thunks autograd asks for are evaluated.
    """
    def vjp_argnums(argnums, ans, args, kwargs):
        def vjp(g):
            thunks = make_grads(g, ans, *args)
            return tuple(thunks[i]() for i in argnums)
        return vjp
    defvjp_argnums(fun, vjp_argnums)


# ---------------------------------------------------------------- RMSNorm
# y = w * x / rms(x),  rms(x) = sqrt(mean(x^2) + eps)                      (ops.1)
# With r = 1/rms and xhat = x r:
#   dL/dx = r * (gw - xhat * mean(gw * xhat)),  gw = g * w                 (ops.2)
#   dL/dw = sum over tokens of g * xhat


def rms_norm_composed(x, w, eps):
    r = 1.0 / xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True) * (1.0 / x.shape[-1]) + eps)
    return x * r * w


def _rms_stats(x, eps):
    r = 1.0 / raw.sqrt(_mean_last(x * x) + eps)
    return r, x * r


@primitive
def rms_norm(x, w, eps):
    return _rms_stats(x, eps)[1] * w


def _rms_grads(g, ans, x, w, eps):
    r, xhat = _rms_stats(x, eps)
    def d_x():
        gw = g * w
        gw -= xhat * _mean_last(gw * xhat)  # in place: fresh temporary
        gw *= r
        return gw
    return {0: d_x, 1: lambda: _sum_to(g * xhat, w.shape)}


def _rms_jvp_x(dx, ans, x, w, eps):
    r, xhat = _rms_stats(x, eps)
    return w * r * (dx - xhat * _mean_last(xhat * dx))


defvjp_shared(rms_norm, _rms_grads)
defjvp(rms_norm, _rms_jvp_x, lambda dw, ans, x, w, eps: _rms_stats(x, eps)[1] * dw)

# ---------------------------------------------------------------- LayerNorm
# y = w * (x - mean(x)) / sqrt(var(x) + eps) + b                           (ops.3)
#   dL/dx = r * (gw - mean(gw) - xhat * mean(gw * xhat))                    (ops.4)


def layer_norm_composed(x, w, b, eps):
    inv_d = 1.0 / x.shape[-1]
    centred = x - xp.sum(x, axis=-1, keepdims=True) * inv_d
    var = xp.sum(centred * centred, axis=-1, keepdims=True) * inv_d
    return centred / xp.sqrt(var + eps) * w + b


def _ln_stats(x, eps):
    centred = x - _mean_last(x)
    r = 1.0 / raw.sqrt(_mean_last(centred * centred) + eps)
    return r, centred * r


@primitive
def layer_norm(x, w, b, eps):
    return _ln_stats(x, eps)[1] * w + b


def _ln_grads(g, ans, x, w, b, eps):
    r, xhat = _ln_stats(x, eps)
    def d_x():
        gw = g * w
        correction = xhat * _mean_last(gw * xhat)
        correction += _mean_last(gw)  # in place: fresh temporaries
        gw -= correction
        gw *= r
        return gw
    return {0: d_x,
            1: lambda: _sum_to(g * xhat, w.shape),
            2: lambda: _sum_to(g, raw.shape(b))}


def _ln_jvp_x(dx, ans, x, w, b, eps):
    r, xhat = _ln_stats(x, eps)
    return w * r * (dx - _mean_last(dx) - xhat * _mean_last(xhat * dx))


defvjp_shared(layer_norm, _ln_grads)
defjvp(layer_norm, _ln_jvp_x,
       lambda dw, ans, x, w, b, eps: _ln_stats(x, eps)[1] * dw,
       lambda db, ans, x, w, b, eps: raw.broadcast_to(db, ans.shape))

# ---------------------------------------------------------------- GELU (tanh form, as GPT-2)
# gelu(x) = x/2 * (1 + tanh(c (x + k x^3))),  c = sqrt(2/pi), k = 0.044715   (ops.5)
#   gelu'(x) = (1 + t)/2 + x/2 * (1 - t^2) * c * (1 + 3 k x^2)

_C, _K = math.sqrt(2.0 / math.pi), 0.044715


def gelu_composed(x):
    return 0.5 * x * (1.0 + xp.tanh(_C * (x + _K * x * x * x)))


def _gelu_tanh(x):
    t = x * x  # t = tanh(c x (1 + k x^2)), built in place on one fresh array
    t *= _K
    t += 1.0
    t *= x
    t *= _C
    return raw.tanh(t, out=t)


@primitive
def gelu(x):
    t = _gelu_tanh(x)
    t += 1.0  # x (1 + t) / 2
    t *= x
    t *= 0.5
    return t


def _gelu_slope(x):
    t = _gelu_tanh(x)
    d = x * x  # d = c x (1 + 3 k x^2)
    d *= 3.0 * _K * _C
    d += _C
    d *= x
    slope = t * t  # (1 + t) / 2 + (1 - t^2) d / 2
    slope -= 1.0
    slope *= d
    slope -= t
    slope -= 1.0
    slope *= -0.5
    return slope


defvjp(gelu, lambda ans, x: lambda g: g * _gelu_slope(x))
defjvp(gelu, lambda dx, ans, x: dx * _gelu_slope(x))

# ---------------------------------------------------------------- SiLU and the SwiGLU product
# silu(a) = a * sigmoid(a),   silu'(a) = s (1 + a (1 - s)),  s = sigmoid(a)  (ops.6)
# swiglu(a_g, a_u) = silu(a_g) * a_u   -- the GLU hidden m of docs/01 eq. (1.4) (this project's numbering)


def silu_composed(x):
    return x / (1.0 + xp.exp(-x))


def _silu_slope(x, s=None, silu_x=None):
    s = _sigmoid(x) if s is None else s
    slope = 1.0 - s  # s + silu(x) (1 - s), which equals s (1 + x (1 - s))
    slope *= x * s if silu_x is None else silu_x
    slope += s
    return slope


@primitive
def silu(x):
    s = _sigmoid(x)
    s *= x
    return s


defvjp(silu, lambda ans, x: lambda g: g * _silu_slope(x))
defjvp(silu, lambda dx, ans, x: dx * _silu_slope(x))


def swiglu_composed(gate, up):
    return silu_composed(gate) * up


@primitive
def swiglu(gate, up):
    m = _sigmoid(gate)
    m *= gate
    m *= up
    return m


def _swiglu_grads(g, ans, gate, up):
    s = _sigmoid(gate)  # shared by both gradients
    silu_gate = gate * s
    def d_gate():
        slope = _silu_slope(gate, s, silu_gate)
        slope *= up
        slope *= g
        return slope
    return {0: d_gate, 1: lambda: g * silu_gate}


defvjp_shared(swiglu, _swiglu_grads)
defjvp(swiglu,
       lambda dg, ans, gate, up: dg * up * _silu_slope(gate),
       lambda du, ans, gate, up: du * gate * _sigmoid(gate))

# ---------------------------------------------------------------- causal attention pattern
# q: [batch, n_heads, T, d_head], k: [batch, n_kv_heads, T, d_head].
# Grouped-query attention: query head h reads key head h // (n_heads / n_kv_heads).
# pattern = softmax(q k^T * scale + causal mask)   [batch, n_heads, T, T]   (ops.7)
#   dS = P * (dP - sum(dP * P, -1));  dq = dS k * scale;  dk = dS^T q * scale (ops.8)


def _causal_mask(t):
    return raw.tril(raw.ones((t, t), dtype=bool))


def _grouped(q, n_kv):
    b, h, t, d = q.shape  # -> [batch, n_kv, group, T, d_head]
    return q.reshape(b, n_kv, h // n_kv, t, d)


def attention_pattern_composed(q, k, scale):
    b, h, t, _ = q.shape
    k5 = xp.reshape(k, (b, k.shape[1], 1, t, k.shape[3]))
    scores = xp.reshape(_grouped(q, k.shape[1]) @ xp.swapaxes(k5, -1, -2), (b, h, t, t)) * scale
    scores = scores - 1e30 * (1.0 - _causal_mask(t).astype(q.dtype))  # masked -> exp() == 0
    e = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def _scores(q, k, scale):
    b, h, t, _ = q.shape
    s = _grouped(q, k.shape[1]) @ raw.swapaxes(k[:, :, None], -1, -2)
    return s.reshape(b, h, t, t) * scale


@primitive
def attention_pattern(q, k, scale):
    e = raw.where(_causal_mask(q.shape[2]), _scores(q, k, scale), -raw.inf)
    e -= raw.max(e, axis=-1, keepdims=True)  # in place: fresh temporary
    e = raw.exp(e, out=e)
    e /= raw.sum(e, axis=-1, keepdims=True)
    return e


def _softmax_vjp(p, g):
    d = g * p  # p * (g - sum(g * p))
    d = g - raw.sum(d, axis=-1, keepdims=True)
    d *= p
    return d


def _attention_grads(g, ans, q, k, scale):
    ds = _grouped(_softmax_vjp(ans, g), k.shape[1])  # [b, kv, group, T, T], shared by dq and dk
    return {0: lambda: (ds @ k[:, :, None]).reshape(q.shape) * scale,
            1: lambda: raw.sum(raw.swapaxes(ds, -1, -2) @ _grouped(q, k.shape[1]), axis=2) * scale}


def _jvp_scores(ds, ans):
    # masked entries of ds are finite and meet ans == 0 there, so they drop out
    return ans * (ds - raw.sum(ans * ds, axis=-1, keepdims=True))


defvjp_shared(attention_pattern, _attention_grads)
defjvp(attention_pattern,
       lambda dq, ans, q, k, scale: _jvp_scores(_scores(dq, k, scale), ans),
       lambda dk, ans, q, k, scale: _jvp_scores(_scores(q, dk, scale), ans))

# ---------------------------------------------------------------- rotary position embedding
# Llama's "rotate half" convention: x = [x1, x2] -> x cos + [-x2, x1] sin   (ops.9)
# It is linear in x and orthogonal, so its VJP is the inverse rotation (sin -> -sin).
# x: [batch, T, n_heads, d_head]; cos, sin: [T, 1, d_head] (constants).


def _rotate_half(x):
    half = x.shape[-1] // 2
    return raw.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope_composed(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = xp.split(x, [half], axis=-1)
    return x * cos + xp.concatenate([-x2, x1], axis=-1) * sin


@primitive
def rope(x, cos, sin):
    return x * cos + _rotate_half(x) * sin


defvjp(rope, lambda ans, x, cos, sin: lambda g: g * cos - _rotate_half(g * sin))
defjvp(rope, lambda dx, ans, x, cos, sin: rope(dx, cos, sin))


def rope_tables(n_pos, d_head, theta, dtype):
    """cos and sin tables, [n_pos, 1, d_head], built on the active backend."""
    inv_freq = 1.0 / theta ** (raw.arange(0, d_head, 2, dtype=raw.float64) / d_head)
    angles = raw.arange(n_pos, dtype=raw.float64)[:, None] * inv_freq[None, :]
    angles = raw.concatenate([angles, angles], axis=-1)[:, None, :]
    return raw.cos(angles).astype(dtype), raw.sin(angles).astype(dtype)

# ---------------------------------------------------------------- embedding lookup
# out = W[tokens]; the VJP scatters rows back. For small vocabularies a one-hot
# product is faster than np.add.at (and it is the same on every backend).


def embedding_composed(weight, tokens):
    onehot = (tokens[..., None] == raw.arange(weight.shape[0])).astype(weight.dtype)
    return onehot @ weight


@primitive
def embedding(weight, tokens):
    return weight[tokens]


def _embedding_vjp(ans, weight, tokens):
    def vjp(g):
        g2, flat = g.reshape(-1, weight.shape[1]), tokens.reshape(-1)
        if weight.shape[0] <= 4096:
            onehot = (flat[:, None] == raw.arange(weight.shape[0])).astype(g.dtype)
            return onehot.T @ g2
        out = raw.zeros(weight.shape, dtype=g.dtype)
        raw.add.at(out, flat, g2)
        return out
    return vjp


defvjp(embedding, _embedding_vjp)
defjvp(embedding, lambda dw, ans, weight, tokens: dw[tokens])

# ---------------------------------------------------------------- masked mean cross-entropy
# logits [N, V], targets [N] ints, weights [N] (1 = supervised token, 0 = ignored)
# loss = sum_i w_i (logsumexp(z_i) - z_i[y_i]) / sum_i w_i                 (ops.10)
#   dL/dz_i = w_i (softmax(z_i) - onehot(y_i)) / sum w


def _onehot(targets, n, dtype):
    return (targets[:, None] == raw.arange(n)).astype(dtype)


def cross_entropy_composed(logits, targets, weights):
    z = logits - raw.max(getval(logits), axis=-1, keepdims=True)  # constant shift: no gradient
    logz = xp.log(xp.sum(xp.exp(z), axis=-1))
    picked = xp.sum(z * _onehot(targets, logits.shape[-1], logits.dtype), axis=-1)
    return xp.sum(weights * (logz - picked)) / raw.sum(weights)  # a 0-d array: no host sync


def _log_softmax(z):
    z = z - raw.max(z, axis=-1, keepdims=True)
    return z - raw.log(raw.sum(raw.exp(z), axis=-1, keepdims=True))


@primitive
def cross_entropy(logits, targets, weights):
    logp = _log_softmax(logits)
    nll = -raw.sum(logp * _onehot(targets, logits.shape[-1], logits.dtype), axis=-1)
    return raw.sum(weights * nll) / raw.sum(weights)


def _ce_vjp(ans, logits, targets, weights):
    def vjp(g):
        delta = raw.exp(_log_softmax(logits)) - _onehot(targets, logits.shape[-1], logits.dtype)
        return (g / raw.sum(weights)) * weights[:, None] * delta
    return vjp


def _ce_jvp(dz, ans, logits, targets, weights):
    p = raw.exp(_log_softmax(logits))
    per_token = raw.sum(p * dz, axis=-1) - raw.sum(dz * _onehot(targets, dz.shape[-1], dz.dtype), -1)
    return raw.sum(weights * per_token) / raw.sum(weights)


defvjp(cross_entropy, _ce_vjp)
defjvp(cross_entropy, _ce_jvp)

# ---------------------------------------------------------------- orthonormal rows (LoReFT's R)
# Y = orthonormal_rows(X), X [r, d], r <= d, full rank: Gram-Schmidt on X's rows in order,
# i.e. Y = Q^T for the thin QR  X^T = Q R  with diag(R) > 0.                (ops.11)
# With Qbar = g^T and M = -Qbar^T Q, copyltu(M) = tril(M) + tril(M, -1)^T:
#   dL/dX = R^{-1} (Qbar + Q copyltu(M))^T                                  (ops.12)
# and forward, with C = Q^T dX^T R^{-1}, Omega = tril(C, -1) - tril(C, -1)^T:
#   dQ = dX^T R^{-1} - Q C + Q Omega                                         (ops.13)
# (The QR derivative as in Liao, Liu, Wang & Xiang 2019, "Differentiable programming tensor
# networks"; tests/test_ops.py checks both rules against autograd through the composition.)


def orthonormal_rows_composed(X):
    rows = []
    for i in range(X.shape[0]):
        x = X[i]
        for _ in range(2):  # the second pass removes what rounding left of earlier directions
            if rows:
                Q = xp.stack(rows)  # [i, d]
                x = x - (Q @ x) @ Q
        rows.append(x / xp.sqrt(xp.sum(x * x)))
    return xp.stack(rows)


def _thin_qr(X):
    """(Q [d, r], R [r, r]) of X^T with R's diagonal made positive, as Gram-Schmidt's."""
    Q, R = raw.linalg.qr(X.T)
    signs = raw.where(raw.diagonal(R) < 0, -1.0, 1.0).astype(X.dtype)
    return Q * signs, R * signs[:, None]


@primitive
def orthonormal_rows(X):
    return raw.ascontiguousarray(_thin_qr(X)[0].T)


def _orthonormal_vjp(ans, X):
    def vjp(g):
        Q, R = _thin_qr(X)
        M = -(g @ Q)  # Qbar^T Q with Qbar = g^T: [r, r]
        lower = raw.tril(M, -1)
        B = g.T + Q @ (raw.tril(M) + lower.T)  # [d, r]
        return raw.linalg.solve(R, B.T)  # R^{-1} B^T: [r, d]
    return vjp


def _orthonormal_jvp(dX, ans, X):
    Q, R = _thin_qr(X)
    dA = raw.linalg.solve(R.T, dX).T  # dX^T R^{-1}: [d, r]
    C = Q.T @ dA
    lower = raw.tril(C, -1)
    return (dA - Q @ C + Q @ (lower - lower.T)).T


defvjp(orthonormal_rows, _orthonormal_vjp)
defjvp(orthonormal_rows, _orthonormal_jvp)

PRIMITIVES = {  # name -> (fast primitive, plain composition); the tests walk this table
    "rms_norm": (rms_norm, rms_norm_composed),
    "layer_norm": (layer_norm, layer_norm_composed),
    "gelu": (gelu, gelu_composed),
    "silu": (silu, silu_composed),
    "swiglu": (swiglu, swiglu_composed),
    "attention_pattern": (attention_pattern, attention_pattern_composed),
    "rope": (rope, rope_composed),
    "embedding": (embedding, embedding_composed),
    "cross_entropy": (cross_entropy, cross_entropy_composed),
    "orthonormal_rows": (orthonormal_rows, orthonormal_rows_composed),
}
