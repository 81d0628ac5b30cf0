"""Checker for docs/04-where-to-steer.md: find, with the tools, a site that cannot replicate an update."""
from dataclasses import dataclass

import numpy as np  # host side: building the problem and measuring it

from ..backend import from_numpy
from ..model import Config, init_params, run_with_cache
from ..sites import resolve, split_name
from ..tree import get_path, set_path, tree_map
from .common import call, fail, host, passed, rng_for

MLP_INSIDE = ("ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post")


@dataclass
class UpdateProblem:
    """A model and a weight update of every layer's ``down_proj`` (``W_d -> W_d + dW_d``).

    cfg, params -- the base model (llama preset, float64);
    update      -- ``{dotted parameter name: dW}``, e.g. ``"model.layers.0.mlp.down_proj.weight"``;
    tokens      -- a batch of inputs [B, T] to measure on.
    """
    cfg: Config
    params: dict
    update: dict
    tokens: np.ndarray


def unreachable_site_problem(seed=0):
    """A fresh ``UpdateProblem``. In exactly one layer, ``down_proj`` has lost a direction."""
    rng = rng_for(seed)
    cfg = Config.llama(vocab_size=13, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_layers=3, n_ctx=8)
    params = tree_map(lambda a: a + from_numpy(0.3 * rng.normal(size=a.shape)), init_params(cfg, seed, std=0.3))
    special = int(rng.integers(cfg.n_layers))
    u = rng.normal(size=cfg.d_model)
    u /= np.linalg.norm(u)
    name = f"model.layers.{special}.mlp.down_proj.weight"
    W_d = host(get_path(params, name))
    params = set_path(params, name, from_numpy(W_d - np.outer(u, u @ W_d)))  # col(W_d) now misses u
    update = {f"model.layers.{l}.mlp.down_proj.weight": from_numpy(0.05 * rng.normal(size=(cfg.d_model, cfg.d_mlp)))
              for l in range(cfg.n_layers)}
    tokens = rng.integers(0, cfg.vocab_size, (2, 6))
    return UpdateProblem(cfg, params, update, tokens)


def unreachable_norms(problem):
    """Per layer: ||part of (dW_d) m outside col(W_d)|| over all tokens (eq. 3.5), with the base m."""
    names = [f"blocks.{l}.mlp.hook_post" for l in range(problem.cfg.n_layers)]
    _, cache = run_with_cache(problem.params, problem.tokens, problem.cfg, names=names)
    norms = []
    for l, name in enumerate(names):
        W_d = host(get_path(problem.params, f"model.layers.{l}.mlp.down_proj.weight"))
        dW_d = host(problem.update[f"model.layers.{l}.mlp.down_proj.weight"])
        targets = host(cache[name]).reshape(-1, W_d.shape[1]) @ dW_d.T
        fit = np.linalg.lstsq(W_d, targets.T, rcond=None)[0]
        norms.append(float(np.linalg.norm(targets - (W_d @ fit).T)))
    return norms


def _hint_for(layer, suffix, special):
    if suffix in ("hook_mlp_out", "hook_resid_post"):
        return ("a shift after W_d can add (dW_d) m itself, so post-MLP and post-block steering "
                "replicate this update exactly. Look further upstream.")
    if suffix in MLP_INSIDE:
        return (f"at layer {layer}, W_d has rank d, so col(W_d) is all of R^d and every output shift "
                "is reachable from inside the MLP. Find the layer where the unreachable part "
                "(Exercise 3.2) is non-zero.")
    if layer is not None and layer != special:
        return "the answer is a site in the layer whose down_proj lost a direction; measure each layer."
    return ("a shift on the residual stream before the MLP also travels down the skip connection "
            "into the block output, which can carry any vector past the MLP. Pick a site whose only "
            "way to the block output is through W_d.")


def check_find_unreachable_site(find_unreachable_site, seeds=(0, 1, 2, 3)):
    """Exercise 4.1: ``find_unreachable_site(problem) -> (site, reason)``.

    ``problem`` is an ``UpdateProblem``. Return the name of a site in the updated model
    where *no* per-token shift, of any size, can reproduce what the update does to that
    block's output, and one sentence saying why. Any site whose only path to the block
    output runs through ``W_d`` in the right layer is accepted.
    """
    layers_seen = set()
    for seed in seeds:
        problem = unreachable_site_problem(seed)
        norms = unreachable_norms(problem)
        special = int(np.argmax(norms))
        layers_seen.add(special)
        out = call("4.1", find_unreachable_site, problem)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], str) and isinstance(out[1], str)):
            fail("4.1", "return a pair (site name, one-sentence reason), both strings.")
        site, reason = out
        try:
            concrete = resolve(problem.cfg, site)
        except KeyError as err:
            fail("4.1", str(err))
        if len(concrete) != 1:
            fail("4.1", f"{site!r} names {len(concrete)} sites; give one, e.g. 'blocks.0.pre_mlp'.")
        layer, suffix = split_name(concrete[0])
        if not (layer == special and suffix in MLP_INSIDE):
            fail("4.1", f"{concrete[0]} can replicate this update (seed {seed}). Hint: "
                        f"{_hint_for(layer, suffix, special)}")
        words = reason.lower()
        if not (any(w in words for w in ("col", "range", "span", "image", "subspace"))
                and any(w in words for w in ("w_d", "down"))):
            fail("4.1", "right site, but explain why in terms of the down projection's column space: "
                        "which vectors can W_d write, and where does (dW_d) m point?")
    detail = ", ".join(f"{n:.3f}" for n in norms)
    return passed("4.1", "a site where steering cannot replicate an update",
                  f"Unreachable norm per layer for the last problem: [{detail}].")
