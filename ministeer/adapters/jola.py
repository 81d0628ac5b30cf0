"""JoLA: joint localization and activation editing (Lai, Fraser, Titov, ICML 2025, arXiv 2502.01179).

Like LoFiT, JoLA edits the per-head attention outputs ``z`` = ``blocks.{l}.attn.hook_z``
[B, T, H, dh] at every position, but it learns *which* heads to edit jointly with the
edits, through two HardConcrete gates per head. As the official code does it
(https://github.com/wenlai-lavine/jola, ``jola/modeling_llama.py`` and ``jola/trainers.py``):

    z_{l,h} <- (1 + g2_{l,h} * A_{l,h}) * z_{l,h} + g1_{l,h} * v_{l,h},

with A, v [dh] per head (multiplicative and additive edits) and gates g1, g2 in [0, 1]
from learned log-alphas:

    training:   s = sigmoid((log u - log(1 - u) + log_alpha) / tau),  u ~ U(eps, 1 - eps)
    evaluation: s = sigmoid(log_alpha)                                 (deterministic)
    gate = clip(s * (high - low) + low, 0, 1),  tau = 0.33, (low, high) = (-0.1, 1.1).

One noise draw per gate per head per forward pass (shared by the batch and positions).
The expected-L0 penalty enters the training loss (``Kind.penalty``):

    P(open) = clip(sigmoid(log_alpha - tau log(-low / high)), eps, 1 - eps)
    penalty_t = lam_t * sum_l mean_h P1 / (L H) + (1 - lam_t) * sum_l mean_h P2 / (L H),
    lam_t = 0.1 exp(-0.01 t)                     (the default "expon" gate schedule).

The division by H twice (a mean over heads, then by L H) and the (lam, 1 - lam) weighting
of the additive and multiplicative gates are the official code's; we keep them. The counter
t is not: here it is the optimizer step, from 0 (``objective`` counts its calls, one per
``fit`` step; ``adapted_loss``, the evaluation, never advances it). The official
``ExponentialDecaySchedule.get_lambda`` (``jola/trainers.py``) increments its own count before
it reads it, on every ``compute_loss`` call: from 1, and once per micro-batch of gradient
accumulation and per evaluation batch as well. Without either (as in ``fit``), the official
lam_t is ours at t + 1.
Initialization as the official code: A, v ~ N(0, 1e-3), log_alpha xavier-uniform on a
[H, 1] tensor, i.e. U(-sqrt(6 / (H + 1)), +). So JoLA is not an exact no-op at init
(``init_std=0`` makes it one). Tests: tests/test_adapters_lofit_jola.py.
"""
import numpy as np  # host side: initialization and the gate noise

from ..backend import xp
from ..sites import select_sites
from .core import Kind, init_adapter, make_spec, register
from .positions import check_positions

FIELDS = dict(layers=None, temperature=0.33, low=-0.1, high=1.1, eps=1e-6, init_std=1e-3, gate_lambda=0.1,
              gate_decay=0.01, positions=None)


def _resolve(cfg, spec):
    if not spec["low"] < 0.0 < 1.0 < spec["high"]:
        raise ValueError(f"HardConcrete stretch (low, high) = ({spec['low']}, {spec['high']}): "
                         "need low < 0 and high > 1")
    floats = ("temperature", "low", "high", "eps", "init_std", "gate_lambda", "gate_decay")
    return {**spec, **{f: float(spec[f]) for f in floats}, "sites": select_sites(cfg, "attn.hook_z", spec["layers"]),
            "positions": check_positions(spec["positions"])}


def _shapes(cfg, spec):
    H, dh = cfg.n_heads, cfg.d_head
    return {s: {"A": (H, dh), "v": (H, dh), "log_g1": (H,), "log_g2": (H,)} for s in spec["sites"]}


def _init(cfg, spec, rng):
    bound = np.sqrt(6.0 / (cfg.n_heads + 1))  # xavier-uniform of a [H, 1] tensor: fan_in 1, fan_out H
    out = {}
    for s, shape in _shapes(cfg, spec).items():
        out[s] = {"A": spec["init_std"] * rng.normal(size=shape["A"]),
                  "v": spec["init_std"] * rng.normal(size=shape["v"]),
                  "log_g1": rng.uniform(-bound, bound, shape["log_g1"]),
                  "log_g2": rng.uniform(-bound, bound, shape["log_g2"])}
    return out


def _sigmoid(x):
    return 1.0 / (1.0 + xp.exp(-x))


def gates(spec, log_alpha, u=None):
    """HardConcrete gates [H]: stochastic given noise ``u`` [H] (training), deterministic without."""
    if u is None:
        s = _sigmoid(log_alpha)
    else:
        s = _sigmoid((xp.log(u) - xp.log(1.0 - u) + log_alpha) / spec["temperature"])
    stretched = s * (spec["high"] - spec["low"]) + spec["low"]
    return xp.minimum(xp.maximum(stretched, 0.0), 1.0)  # clip to [0, 1]: exactly 0 or 1 at the ends


def delta(spec, p, z):
    """(g2 * A) * z + g1 * v for z [B, T, H, dh]; the hook adds it to z."""
    g1 = gates(spec, p["log_g1"], p.get("u1"))[:, None]  # [H, 1]
    g2 = gates(spec, p["log_g2"], p.get("u2"))[:, None]
    return (g2 * p["A"]) * z + g1 * p["v"]


def sample(cfg, spec, rng):
    """One training step's gate noise: u = (1 - 2 eps) U(0, 1) + eps per gate, per head, per layer."""
    e = spec["eps"]
    return {s: {"u1": (1 - 2 * e) * rng.random(cfg.n_heads) + e, "u2": (1 - 2 * e) * rng.random(cfg.n_heads) + e}
            for s in spec["sites"]}


def open_probability(spec, log_alpha):
    """P(gate != 0) of each HardConcrete gate, clipped to [eps, 1 - eps] as the official code does."""
    p = _sigmoid(log_alpha - spec["temperature"] * np.log(-spec["low"] / spec["high"]))
    return xp.minimum(xp.maximum(p, spec["eps"]), 1.0 - spec["eps"])


def gate_lambda(spec, step):
    """lam_t = gate_lambda * exp(-gate_decay * t): the official "expon" schedule (decay 0: constant)."""
    return spec["gate_lambda"] * np.exp(-spec["gate_decay"] * step)


def l0_penalty(cfg, spec, params, step):
    lam = gate_lambda(spec, step)
    p1 = sum(xp.mean(open_probability(spec, p["log_g1"])) for p in params.values())
    p2 = sum(xp.mean(open_probability(spec, p["log_g2"])) for p in params.values())
    return (lam * p1 + (1.0 - lam) * p2) / (cfg.n_layers * cfg.n_heads)


register(Kind("jola", FIELDS, _resolve, _shapes, _init, delta=delta, penalty=l0_penalty, sample=sample))


def jola(cfg, layers=None, init_std=1e-3, seed=0, **fields):
    """JoLA on every head of the chosen layers (default all): gated scaling and offset vectors."""
    return init_adapter(cfg, make_spec(cfg, "jola", layers=layers, init_std=init_std, **fields), seed)
