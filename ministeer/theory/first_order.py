"""The general first-order map: any weight update, any site, by forward-mode autodiff.

docs/02-weight-updates-as-shifts.md, section "First order, for any site". Let s(theta)
be the activation at a site (for fixed tokens) and dtheta an update. Then

    dS(eps)   = s(theta + eps dtheta) - s(theta)                  exact shift   (2.6)
    delta_s   = J_theta s [dtheta] = d/d eps s(theta + eps dtheta)|_0           (2.5)
    R(eps)    = || dS(eps) - eps delta_s || = O(eps^2)            remainder     (2.7)

so the steer "add eps * delta_s at s" reproduces the update to first order. delta_s is
computed by ``autograd.make_jvp`` through ``model.run_with_cache`` (every primitive
in ministeer/ops.py has a JVP), i.e. one forward pass in forward mode, never a
Jacobian matrix. For a whole block (eq. (2.9)) the same is done on ``T_l`` alone.

An *update* is a dict {dotted parameter name: array}, e.g.
``{"model.layers.0.mlp.down_proj.weight": dW}``, or a whole params-shaped tree.
Checked in tests/test_claim_15_block_first_order.py and tests/test_claim_02_glu_update.py.
"""
import fnmatch

import numpy as np  # host-side RNG for random updates only
from autograd import make_jvp

from ..backend import from_numpy, raw
from ..model import run_with_cache
from ..sites import resolve
from ..tree import get_path, named_leaves, set_path
from .blocks import apply_block, block_params
from .scaling import rounding_floor, settled_slope


def named_update(params, delta):
    """Normalize an update to {dotted name: array}, checking names and shapes against params."""
    if isinstance(delta, dict) and delta and all(isinstance(k, str) and "." in k for k in delta):
        items = dict(delta)
    else:
        items = dict(named_leaves(delta))
    valid = dict(named_leaves(params))
    for name, d in items.items():
        if name not in valid:
            raise KeyError(f"update names unknown parameter {name!r}; valid: {sorted(valid)}")
        if tuple(d.shape) != tuple(valid[name].shape):
            raise ValueError(f"update for {name!r} has shape {tuple(d.shape)}, "
                             f"expected {tuple(valid[name].shape)}")
    return items


def perturb(params, delta, eps=1.0):
    """theta + eps * dtheta, as a new params tree (``params`` is not modified).

    eps may be an autograd tracer: this is the function make_jvp differentiates.
    """
    out = params
    for name, d in named_update(params, delta).items():
        out = set_path(out, name, get_path(params, name) + eps * d)
    return out


def random_update(params, pattern="model.layers.*", seed=0, scale=1.0):
    """A random update of every leaf whose dotted name matches ``pattern`` (a glob).

    Each leaf gets N(0, 1) entries scaled so that ||dW||_F = scale * ||W||_F (or
    ``scale`` * sqrt(size) for an all-zero leaf), so eps is a *relative* size.
    """
    rng = np.random.default_rng(seed)
    delta = {}
    for name, leaf in named_leaves(params):
        if fnmatch.fnmatchcase(name, pattern):
            d = rng.normal(size=leaf.shape)
            ref = float(raw.linalg.norm(leaf)) or float(np.sqrt(leaf.size))
            delta[name] = from_numpy(d * (scale * ref / np.linalg.norm(d)), leaf.dtype)
    if not delta:
        raise KeyError(f"no parameter matches {pattern!r}; valid: {[n for n, _ in named_leaves(params)]}")
    return delta


def restrict_to_block(delta, layer):
    """The part of a named update that lives in block ``layer`` (eq. (2.10) translates it)."""
    prefix = f"model.layers.{layer}."
    return {n: d for n, d in delta.items() if n.startswith(prefix)}


def _block_local(params, delta, layer):
    """The block-``layer`` part of ``delta`` with names relative to the block's own subtree."""
    cut = len(f"model.layers.{layer}.")
    return {n[cut:]: d for n, d in restrict_to_block(named_update(params, delta), layer).items()}


def _one_site(cfg, site):
    names = resolve(cfg, site)
    if len(names) != 1:
        raise ValueError(f"site {site!r} matches {len(names)} sites ({names[:4]}...); give one site")
    return names[0]


def site_value(params, tokens, cfg, site, hooks=None):
    """s(theta): the activation at one concrete site (aliases like 'blocks.0.post_block' are fine)."""
    name = _one_site(cfg, site)
    return run_with_cache(params, tokens, cfg, names=name, hooks=hooks)[1][name]


def first_order_shift(params, delta, tokens, cfg, site, hooks=None):
    """eq. (2.5): (s(theta), J_theta s[dtheta]) by one forward-mode pass over eps."""
    name = _one_site(cfg, site)
    delta = named_update(params, delta)
    along = lambda eps: site_value(perturb(params, delta, eps), tokens, cfg, name, hooks)
    return make_jvp(along)(0.0)(1.0)


def exact_shift(params, delta, tokens, cfg, site, eps=1.0, hooks=None):
    """eq. (2.6): s(theta + eps dtheta) - s(theta)."""
    return (site_value(perturb(params, delta, eps), tokens, cfg, site, hooks)
            - site_value(params, tokens, cfg, site, hooks))


def block_first_order_shift(params, delta, h, cfg, layer):
    """eq. (2.9): (T_l(H), D_theta T_l(H)[dtheta_l]) for a stream H [B, T, d] entering block l.

    Only the part of ``delta`` inside block ``layer`` matters: T_l reads no other weights.
    """
    p, local = block_params(params, layer), _block_local(params, delta, layer)
    if not local:
        return apply_block(p, h, cfg), raw.zeros_like(h)
    along = lambda eps: apply_block(perturb(p, local, eps), h, cfg)
    return make_jvp(along)(0.0)(1.0)


def remainder_curve(value_at, first_order, base, epsilons):
    """eq. (2.7): [||value_at(eps) - base - eps * first_order||] for each eps, and the floor.

    The floor (see scaling.py) is 1e3 ulps of the largest value compared.
    """
    errs, scale = [], float(raw.max(raw.abs(base))) if base.size else 0.0
    for eps in epsilons:
        v = value_at(eps)
        scale = max(scale, float(raw.max(raw.abs(v))))
        errs.append(float(raw.linalg.norm(v - base - eps * first_order)))
    return errs, rounding_floor(scale * np.sqrt(base.size))


def site_remainders(params, delta, tokens, cfg, site, epsilons, hooks=None):
    """eq. (2.7) at a model site: (remainders, floor, slope or None if linear to rounding)."""
    base, jvp = first_order_shift(params, delta, tokens, cfg, site, hooks)
    at = lambda eps: site_value(perturb(params, delta, eps), tokens, cfg, site, hooks)
    errs, floor = remainder_curve(at, jvp, base, epsilons)
    return errs, floor, slope_or_none(epsilons, errs, floor)


def block_remainders(params, delta, h, cfg, layer, epsilons):
    """eq. (2.7) for the block map T_l at a given stream H (claim 15)."""
    base, jvp = block_first_order_shift(params, delta, h, cfg, layer)
    p, local = block_params(params, layer), _block_local(params, delta, layer)
    at = lambda eps: apply_block(perturb(p, local, eps), h, cfg)
    errs, floor = remainder_curve(at, jvp, base, epsilons)
    return errs, floor, slope_or_none(epsilons, errs, floor)


def slope_or_none(epsilons, errs, floor):
    """eq. (2.8): the settled log-log slope of the remainders (scaling.settled_slope), or None
    when fewer than three lie above the rounding floor (the map is linear to rounding)."""
    try:
        return settled_slope(epsilons, errs, floor)
    except ValueError:
        return None
