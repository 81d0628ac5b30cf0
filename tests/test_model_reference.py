"""The model against closed forms written here from the published definitions, not from model.py.

A second forward pass in plain NumPy, token by token and head by head, from the Llama
(RMSNorm, rotary embeddings as 2-D rotations, grouped-query attention, SwiGLU) and GPT-2
(LayerNorm, learned positions, tanh-GELU, biases, tied unembedding) definitions in the
Hugging Face ``transformers`` modeling code. It runs with ``norm_eps`` and ``rope_theta``
far from their defaults, so a norm that drops or misplaces eps, a rotation with the wrong
sign or frequency, or an attention scale other than 1/sqrt(d_head) is off by 1e-3 or more
(each was checked by breaking ministeer/model.py or ops.py and watching these tests fail).
"""
import math

import numpy as np
from hypothesis import given, strategies as st

from strategies import configs, random_params, seeds
from tolerances import EXACT
from ministeer import ops
from ministeer.model import forward


def _rms(x, w, eps):
    return w * x / np.sqrt(np.mean(x * x) + eps)


def _layer(x, w, b, eps):
    c = x - np.mean(x)
    return w * c / np.sqrt(np.mean(c * c) + eps) + b


def _rotate(v, pos, theta):
    """RoPE as rotations of the pairs (v_i, v_{i+half}) by pos * theta^(-2i/d_head)."""
    half = len(v) // 2
    out = v.copy()
    for i in range(half):
        a = pos * theta ** (-2.0 * i / len(v))
        out[i] = v[i] * math.cos(a) - v[i + half] * math.sin(a)
        out[i + half] = v[i + half] * math.cos(a) + v[i] * math.sin(a)
    return out


def _gelu(a):
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


def _lin(x, p):
    return p["weight"] @ x + (p["bias"] if "bias" in p else 0.0)


def reference_logits(params, tokens, cfg):
    """Logits [T, V] for one sequence, one token and one head at a time."""
    m, T, H, K, dh = params["model"], len(tokens), cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    norm = (lambda x, p: _rms(x, p["weight"], cfg.norm_eps)) if cfg.norm == "rms" else \
        (lambda x, p: _layer(x, p["weight"], p["bias"], cfg.norm_eps))
    h = [m["embed_tokens"]["weight"][t].copy() for t in tokens]
    if cfg.pos == "learned":
        h = [h[i] + m["embed_positions"]["weight"][i] for i in range(T)]
    for p in m["layers"]:
        a = p["self_attn"]
        x = [norm(v, p["input_layernorm"]) for v in h]
        q = [_lin(v, a["q_proj"]).reshape(H, dh) for v in x]
        k = [_lin(v, a["k_proj"]).reshape(K, dh) for v in x]
        v_ = [_lin(v, a["v_proj"]).reshape(K, dh) for v in x]
        if cfg.pos == "rope":
            q = [np.stack([_rotate(qq, i, cfg.rope_theta) for qq in q[i]]) for i in range(T)]
            k = [np.stack([_rotate(kk, i, cfg.rope_theta) for kk in k[i]]) for i in range(T)]
        out = []
        for i in range(T):
            heads = []
            for head in range(H):
                g = head // (H // K)  # the kv head this query head reads
                s = np.array([q[i][head] @ k[j][g] / math.sqrt(dh) for j in range(i + 1)])
                w = np.exp(s - s.max())
                w = w / w.sum()
                heads.append(sum(w[j] * v_[j][g] for j in range(i + 1)))
            out.append(_lin(np.concatenate(heads), a["o_proj"]))
        h = [h[i] + out[i] for i in range(T)]
        mp = p["mlp"]
        for i in range(T):
            x = norm(h[i], p["post_attention_layernorm"])
            if cfg.mlp == "swiglu":
                g_ = _lin(x, mp["gate_proj"])
                hidden = g_ / (1 + np.exp(-g_)) * _lin(x, mp["up_proj"])
            else:
                hidden = _gelu(_lin(x, mp["up_proj"]))
            h[i] = h[i] + _lin(hidden, mp["down_proj"])
    W = m["embed_tokens"]["weight"] if cfg.tied else params["lm_head"]["weight"]
    return np.stack([W @ norm(v, m["norm"]) for v in h])


@given(configs(), seeds, st.sampled_from([0.05, 0.5, 2.0]), st.sampled_from([10.0, 500.0, 10000.0]))
def test_forward_matches_the_closed_form_definition(cfg, seed, eps, theta):
    """Large eps and varied theta: rejects a dropped / doubled eps, eps outside the sqrt,
    a flipped rotation, a wrong RoPE frequency, a scale of 1/d_head or none, wrong GQA grouping."""
    cfg = cfg.replace(norm_eps=eps, rope_theta=theta, n_layers=min(cfg.n_layers, 2))
    params = random_params(cfg, seed)
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, (2, 5))
    logits = forward(params, tokens, cfg)
    for b in range(len(tokens)):
        np.testing.assert_allclose(logits[b], reference_logits(params, tokens[b], cfg), **EXACT)


@given(seeds, st.sampled_from([2, 4, 8]), st.integers(1, 9))
def test_rope_rotates_each_pair_by_position_times_frequency(seed, d_head, T):
    """ops.rope with ops.rope_tables is the rotation of pairs (i, i + d/2) by t * theta^(-2i/d)."""
    x = np.random.default_rng(seed).normal(size=(1, T, 1, d_head))
    cos, sin = ops.rope_tables(T, d_head, 100.0, "float64")
    got = ops.rope(x, cos, sin)
    want = np.stack([_rotate(x[0, t, 0], t, 100.0) for t in range(T)])
    np.testing.assert_allclose(got[0, :, 0], want, **EXACT)


@given(seeds, st.integers(2, 9), st.sampled_from([1e-5, 0.1, 3.0]))
def test_norms_put_eps_inside_the_square_root(seed, d, eps):
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(3, d)), rng.normal(size=d), rng.normal(size=d)
    np.testing.assert_allclose(ops.rms_norm(x, w, eps), np.stack([_rms(v, w, eps) for v in x]), **EXACT)
    np.testing.assert_allclose(ops.layer_norm(x, w, b, eps), np.stack([_layer(v, w, b, eps) for v in x]), **EXACT)
