"""LoFiT: localized fine-tuning on a few attention heads (Yin, Ye, Durrett, NeurIPS 2024, arXiv 2406.01563).

LoFiT edits the per-head attention outputs ``z`` = ``blocks.{l}.attn.hook_z`` [B, T, H, dh]
(before ``o_proj``), at every position, in two steps, as the authors' code does
(https://github.com/fc2869/lo-fit, ``lofit_trainer.py`` with ``--lofit_component A`` then ``v``):

1. **Head selection.** Learn a scaling vector ``A_{l,h}`` [dh] for every head,
   ``z_{l,h} <- (1 + A_{l,h}) * z_{l,h}``, with an L1 penalty ``lambda * sum |A|`` added to
   the loss (kind ``lofit_scale``). Rank heads by ``||A_{l,h}||_2`` and keep the top K
   (``select_heads``; K defaults to the published scripts' share of heads, ``default_k``).
2. **Bias tuning.** Learn an offset ``v_{l,h}`` [dh] on the K selected heads only,
   ``z_{l,h} <- z_{l,h} + v_{l,h}`` (kind ``lofit``). Only these K dh numbers are kept: the
   scaling vectors of step 1 are discarded (the official step 2 starts from A = 0).

Defaults, and the script behind each (https://github.com/fc2869/lo-fit):

* K = 32 of Llama2-7B's 1024 heads (3.125%), the ``--use_topk_heads 32`` of step 2 in all three
  published scripts (``train_script_clutrr.sh``, ``train_script_mquake.sh``,
  ``train_script_truthfulqa.sh``); the paper (arXiv 2406.01563) trains 48 on Llama2-13B and 16
  on Gemma-7B, also about 3%. The code's own fallback, ``int(0.1 * num_heads * num_layers)`` in
  ``lofit_trainer.py``, applies only when no script sets K, and is about 3x as many heads.
* step 1's rate ``lr / 20`` and L1 5e-3: ``train_script_clutrr.sh`` (5e-4 against step 2's
  1e-2). ``train_script_mquake.sh`` uses ``lr / 2`` (5e-3) and L1 1e-3,
  ``train_script_truthfulqa.sh`` ``lr / 2`` and L1 5e-4: pass ``select_lr`` and ``l1``.
* step 2's rate 1e-2 and L1 0: all three scripts.

Both steps initialize their vectors ~ N(0, 1e-3) like the official code, so neither is an
exact no-op at init (``init_std=0`` makes them one). ``train_lofit`` runs both steps and is
what ``train_method("lofit", ...)`` calls. Tests: tests/test_adapters_lofit_jola.py.
"""
import math

import numpy as np  # host side: initialization and the ranking of heads

from ..backend import raw, to_numpy, xp
from ..sites import check_layers, select_sites, site_name, split_name
from ..train import fit
from .core import Kind, as_adapters, init_adapter, make_spec, objective, register, trainable_of, with_trainable
from .positions import check_positions

SITE = "attn.hook_z"


def _z_sites(cfg, layers):
    return select_sites(cfg, SITE, layers)


SCRIPTS_SHARE = 32 / 1024  # the published scripts' K on Llama2-7B (32 layers x 32 heads)


def default_k(cfg):
    """The published scripts' share of heads: 32 of 1024 (3.125%) of all L * H, rounded up, at least one."""
    return max(1, math.ceil(SCRIPTS_SHARE * cfg.n_layers * cfg.n_heads))


# ---------------------------------------------------------------- step 1: scaling vectors, L1 penalty


def _scale_resolve(cfg, spec):
    return {**spec, "sites": _z_sites(cfg, spec["layers"]), "l1": float(spec["l1"]),
            "init_std": float(spec["init_std"]), "positions": check_positions(spec["positions"])}


def _scale_shapes(cfg, spec):
    return {s: {"A": (cfg.n_heads, cfg.d_head)} for s in spec["sites"]}


def _scale_init(cfg, spec, rng):
    return {s: {"A": spec["init_std"] * rng.normal(size=shape["A"])} for s, shape in _scale_shapes(cfg, spec).items()}


def scale_delta(spec, p, z):
    """A * z for z [B, T, H, dh]: the hook adds it, so z <- (1 + A) * z."""
    return p["A"] * z


def l1_penalty(cfg, spec, params, step):
    """lambda * sum |A| over every head of every layer (the official ``l1_lambda``; a sum, not a mean)."""
    return spec["l1"] * sum(xp.sum(xp.abs(p["A"])) for p in params.values())


register(Kind("lofit_scale", dict(layers=None, l1=5e-3, init_std=1e-3, positions=None),
              _scale_resolve, _scale_shapes, _scale_init, delta=scale_delta, penalty=l1_penalty))


def head_norms(scale_adapter):
    """``||A_{l,h}||_2`` as a host array [L_edited, H], rows in the adapter's site order."""
    return np.stack([np.linalg.norm(to_numpy(scale_adapter.params[s]["A"]), axis=-1)
                     for s in scale_adapter.spec["sites"]])


def select_heads(norms, k, layers=None):
    """The ``k`` heads with the largest norms, largest first, as ``[[layer, head], ...]``.

    norms  -- [L, H] (one row per layer in ``layers``, default 0..L-1).
    Ties keep the earlier (layer, head) first (a stable sort; the official code's reversed
    argsort would put the later one first -- ties have probability 0 after training).
    """
    norms = np.asarray(norms, dtype=float)
    layers = list(range(norms.shape[0])) if layers is None else list(layers)
    if not 1 <= k <= norms.size:
        raise ValueError(f"k={k}: choose between 1 and {norms.size} heads")
    order = np.argsort(-norms.reshape(-1), kind="stable")[:k]
    return [[layers[i // norms.shape[1]], int(i % norms.shape[1])] for i in order]


# ---------------------------------------------------------------- step 2: offsets on the selected heads


def _offset_resolve(cfg, spec):
    heads = spec["heads"]
    if heads is None:  # not selected yet: K placeholders, no site (count_params, build before step 1)
        k = default_k(cfg) if spec["k"] is None else spec["k"]
        if not isinstance(k, int) or not 1 <= k <= cfg.n_layers * cfg.n_heads:
            raise ValueError(f"k={k!r}: LoFiT keeps between 1 and {cfg.n_layers * cfg.n_heads} heads")
        return {**spec, "k": k, "sites": [], "init_std": float(spec["init_std"]),
                "positions": check_positions(spec["positions"])}
    heads = [[int(l), int(h)] for l, h in heads]
    check_layers(cfg, [l for l, _ in heads])
    bad = [h for h in heads if not 0 <= h[1] < cfg.n_heads]
    if bad or len({tuple(h) for h in heads}) != len(heads):
        raise ValueError(f"heads {heads}: expected distinct [layer, head] pairs with head in 0..{cfg.n_heads - 1}")
    if spec["k"] is not None and spec["k"] != len(heads):
        raise ValueError(f"k={spec['k']} but {len(heads)} heads were given")
    layers = sorted({l for l, _ in heads})
    return {**spec, "heads": heads, "k": len(heads), "sites": [site_name(SITE, l) for l in layers],
            "init_std": float(spec["init_std"]), "positions": check_positions(spec["positions"])}


def _heads_at(spec, site):
    layer = split_name(site)[0]
    return [h for l, h in spec["heads"] if l == layer]


def _offset_shapes(cfg, spec):
    if spec["heads"] is None:
        return {"unplaced": {"v": (spec["k"], cfg.d_head)}}
    return {s: {"v": (len(_heads_at(spec, s)), cfg.d_head)} for s in spec["sites"]}


def _offset_init(cfg, spec, rng):
    return {g: {"v": spec["init_std"] * rng.normal(size=shape["v"])} for g, shape in _offset_shapes(cfg, spec).items()}


def offset_delta(spec, p, z):
    """S^T v: the k_l offsets [k_l, dh] placed on their heads of z [B, T, H, dh] (0 elsewhere)."""
    chosen = raw.asarray(spec["heads_here"], dtype=int)  # this site's heads (``site_spec``)
    S = 1.0 * (chosen[:, None] == raw.arange(z.shape[-2])[None, :])  # [k_l, H] one-hot rows: a constant
    return S.T.astype(z.dtype) @ p["v"]  # [H, dh], broadcasts over [B, T]


def _offset_site_spec(spec, site):
    return {**spec, "heads_here": _heads_at(spec, site)}


register(Kind("lofit", dict(heads=None, k=None, init_std=1e-3, positions=None),
              _offset_resolve, _offset_shapes, _offset_init, delta=offset_delta,
              site_spec=_offset_site_spec))


def lofit_scale(cfg, layers=None, l1=5e-3, init_std=1e-3, seed=0):
    """Step 1's adapter: a scaling vector per head of every chosen layer, z <- (1 + A) z."""
    return init_adapter(cfg, make_spec(cfg, "lofit_scale", layers=layers, l1=l1, init_std=init_std), seed)


def lofit(cfg, heads, init_std=1e-3, seed=0):
    """Step 2's adapter: an offset vector on each of ``heads`` (``[[layer, head], ...]``), z <- z + v."""
    return init_adapter(cfg, make_spec(cfg, "lofit", heads=heads, init_std=init_std), seed)


def train_lofit(params, cfg, data, *, steps, lr, seed=0, adapters=None, select_steps=None, select_lr=None,
                l1=5e-3, layers=None, **fit_kwargs):
    """Both LoFiT steps. ``adapters`` (optional): ``{"lofit": Adapter}``, whose spec gives K (and
    whose heads, if already chosen, skip step 1). Step 1 runs ``select_steps`` (default
    ``steps``) at ``select_lr`` (default ``lr / 20``: the official ``train_script.sh`` pairs
    ``--lr 1e-3`` for step 1 with ``--lr 2e-2`` for step 2 on Llama-2-13B; the MQuAKE and TruthfulQA
    scripts use ``lr / 2``) with L1 ``l1`` (default 5e-3, this project's toy-scale choice; the
    scripts' ``--l1_lambda`` is 1e-3 or 5e-4); step 2 runs ``steps`` at ``lr``. Returns
    ``({"lofit": Adapter}, FitResult of step 2)``; step 1's result is on ``result.select`` and the
    chosen heads in the adapter's spec.
    Each step draws its batches from ``data(0)`` on, as the official two runs each start their
    dataset afresh; a ``callback`` counts steps across both (step 2 continues step 1's count)."""
    start = as_adapters(adapters)["lofit"] if adapters is not None else None
    spec = start.spec if start is not None else make_spec(cfg, "lofit")
    selection = None
    if spec["heads"] is None:
        scale = {"scale": lofit_scale(cfg, layers=layers, l1=l1, seed=seed)}
        selection = fit(objective(params, scale, cfg, seed), trainable_of(scale), data,
                        steps=steps if select_steps is None else select_steps,
                        lr=lr / 20 if select_lr is None else select_lr, pass_step=True, **fit_kwargs)
        scale = with_trainable(scale, selection.params)["scale"]
        rows = [split_name(s)[0] for s in scale.spec["sites"]]
        heads = select_heads(head_norms(scale), spec["k"], rows)
        offsets = {"lofit": lofit(cfg, heads, spec["init_std"], seed + 1)}
    else:
        offsets = {"lofit": start}
    if selection is not None and fit_kwargs.get("callback") is not None:
        done, callback = len(selection.losses), fit_kwargs["callback"]
        fit_kwargs = dict(fit_kwargs, callback=lambda step, loss, trainable: callback(done + step, loss, trainable))
    result = fit(objective(params, offsets, cfg, seed), trainable_of(offsets), data, steps=steps, lr=lr,
                 pass_step=True, **fit_kwargs)
    result.select = selection
    return with_trainable(offsets, result.params), result
