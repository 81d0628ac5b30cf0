"""Steering adapters: a learned vector, and the paper's low-rank (optionally nonlinear) adapter.

Steering vector (the paper's fixed-vector variant, LoFIT-sized): at each chosen site

    h_t <- h_t + v            for the chosen positions t (default: every token).

Low-rank steering, the paper's method (``LowRankAdapter`` in the official code,
https://github.com/SprocketLab/steerling):

    h_t <- h_t + alpha * U phi(D h_t),   D: [r, w],  U: [w, r],

on ``blocks.{l}.hook_resid_post`` of every layer by default (post-block), every token,
no biases, alpha = 1, phi = SiLU. ``D`` ~ kaiming-uniform(a=sqrt 5) x 1e-3 and ``U`` = 0,
so the adapter starts as an exact no-op. The same adapter placed at ``hook_attn_out``,
``pre_mlp`` (``ln2.hook_normalized``) or ``post_mlp`` (``hook_mlp_out``) gives the paper's
site comparison at equal parameter count (docs/04-where-to-steer.md). Tests: tests/test_adapters_core.py.
"""
import math
import numbers

import numpy as np  # host side only: initialization

from .. import ops
from ..backend import xp
from ..sites import select_sites, site_shape
from .core import Kind, check_rank, check_scale, init_adapter, kaiming_uniform, make_spec, register, width
from .positions import check_positions

ACTIVATIONS = {
    "linear": lambda x: x,
    "silu": ops.silu,
    "gelu": ops.gelu,
    "relu": lambda x: x * (x > 0),  # the comparison is not traced: a constant 0/1 mask
    "tanh": lambda x: xp.tanh(x),
}


def check_activation(name):
    name = "linear" if name in (None, "identity") else name
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}; expected one of {sorted(ACTIVATIONS)} (or 'identity'/None)")
    return name


# ---------------------------------------------------------------- steering vector


def _vector_resolve(cfg, spec):
    return {**spec, "sites": select_sites(cfg, spec["sites"], spec["layers"]),
            "positions": check_positions(spec["positions"])}


def _vector_shapes(cfg, spec):
    return {s: {"vector": site_shape(cfg, s)} for s in spec["sites"]}


def _vector_init(cfg, spec, rng):
    return {s: {"vector": np.zeros(shape["vector"])} for s, shape in _vector_shapes(cfg, spec).items()}


def _vector_delta(spec, p, h):
    return p["vector"]  # broadcasts over [B, T]


register(Kind("vector", dict(sites="post_block", layers=None, positions=None),
              _vector_resolve, _vector_shapes, _vector_init, delta=_vector_delta,
              affine=lambda spec, p: (None, None, p["vector"])))


def steering_vector(cfg, sites="post_block", layers=None, positions=None):
    """One learned vector per site (zero at init). ``sites``: any name, alias or glob."""
    return init_adapter(cfg, make_spec(cfg, "vector", sites=sites, layers=layers, positions=positions))


# ---------------------------------------------------------------- low-rank adapter


def _lowrank_resolve(cfg, spec):
    init_scale = spec["init_scale"]
    if not isinstance(init_scale, numbers.Real) or isinstance(init_scale, bool) or not math.isfinite(init_scale):
        raise ValueError(f"init_scale must be a finite number, got {init_scale!r}")
    return {**spec, "r": check_rank(spec["r"]), "sites": select_sites(cfg, spec["sites"], spec["layers"], flat_only=True),
            "activation": check_activation(spec["activation"]), "alpha": check_scale(spec["alpha"]),
            "positions": check_positions(spec["positions"]), "init_scale": float(init_scale)}


def _lowrank_shapes(cfg, spec):
    r = spec["r"]
    return {s: {"D": (r, width(cfg, s)), "U": (width(cfg, s), r)} for s in spec["sites"]}


def _lowrank_init(cfg, spec, rng):
    out = {}
    for s, shape in _lowrank_shapes(cfg, spec).items():
        out[s] = {"D": kaiming_uniform(rng, shape["D"]) * spec["init_scale"], "U": np.zeros(shape["U"])}
    return out


def lowrank_delta(spec, p, h):
    """alpha * U phi(D h) for h [B, T, w]  (docs/05-parameterizations.md)."""
    z = ACTIVATIONS[spec["activation"]](h @ p["D"].T)  # [B, T, r]
    return spec["alpha"] * (z @ p["U"].T)  # [B, T, w]


def _lowrank_affine(spec, p):
    if spec["activation"] != "linear":
        return None  # nonlinear: cannot be folded
    return spec["alpha"] * p["U"], p["D"], None


register(Kind("lowrank", dict(sites="post_block", layers=None, r=8, activation="silu", alpha=1.0,
                              positions=None, init_scale=1e-3),
              _lowrank_resolve, _lowrank_shapes, _lowrank_init, delta=lowrank_delta, affine=_lowrank_affine))


def lowrank(cfg, sites="post_block", r=8, activation="silu", alpha=1.0, layers=None, positions=None,
            init_scale=1e-3, seed=0):
    """The paper's adapter ``h + alpha U phi(D h)`` at every chosen site (default: post-block,
    all layers, all tokens, r=8, SiLU). ``activation="linear"`` is the linear variant."""
    return init_adapter(cfg, make_spec(cfg, "lowrank", sites=sites, r=r, activation=activation, alpha=alpha,
                                       layers=layers, positions=positions, init_scale=init_scale), seed)
