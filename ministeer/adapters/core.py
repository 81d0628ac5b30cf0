"""Adapters as data, and the one call that runs a model with a set of them.

An ``Adapter`` is a JSON-able ``spec`` (what it is: kind, sites or target modules,
rank, positions, activation, ...) plus ``params``, a pytree of arrays (what it has
learned). No closures: ``autograd.grad`` differentiates the arrays, ``fit`` updates
them, ``save_adapters`` writes them with the spec beside them.

Two families, one mechanism each:

* **weight adapters** (``full``, ``lora``) return *effective weights*, computed inside the
  traced function from the frozen base (``W + s B A``); the base is never mutated.
* **activation adapters** (``vector``, ``lowrank``, ``loreft``, ``direft``, ``nodireft``,
  ``lofit_scale``, ``lofit``, ``jola``) become hooks ``h -> h + mask * delta(h)`` on
  ``model.forward``, built from the data at call time.

A kind may also add a term to the training loss (``Kind.penalty``: LoFiT's L1, JoLA's L0)
and draw random numbers per training step (``Kind.sample``: JoLA's gate noise); both live
in ``objective`` only, so ``adapted_forward`` and ``adapted_loss`` are the evaluation mode.

A set of adapters is a dict ``{name: Adapter}`` (its names are the top-level keys of
the trainable pytree, so ``fit(group_lr={"lora": ..., "steer": ...})`` works); a single
Adapter or a list is accepted too. Hooks at one site run in the dict's order.
Tests: tests/test_adapters_core.py (exact no-op at init, the formulas at a site, positions,
composition), tests/test_adapters_backend.py (the same on the CuPy code path).
"""
import json
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np  # host side only: seeded initialization
from autograd.tracer import getval

from ..backend import from_numpy
from ..model import fused_layers as _model_fused_layers, loss_fn, forward
from ..sites import resolve_hooks, site_names, site_shape
from .positions import position_mask, prompt_lengths_from_mask


@dataclass(frozen=True, eq=False)
class Adapter:
    spec: dict    # JSON-able: {"kind": "lowrank", "sites": [...], "r": 8, ...}
    params: dict  # arrays: {site or module path: {leaf name: array}} (``full``: the base tree)

    @property
    def kind(self):
        return self.spec["kind"]

    def with_params(self, params):
        return Adapter(self.spec, params)

    def __repr__(self):
        from ..tree import tree_size
        fields = ", ".join(f"{k}={v!r}" for k, v in self.spec.items() if k not in ("sites", "modules"))
        return f"Adapter({fields}, {tree_size(self.params)} params)"


@dataclass(frozen=True)
class Kind:
    """How one kind of adapter is described, shaped, initialized and applied."""
    name: str
    fields: dict                        # spec field -> default
    resolve: Callable                   # (cfg, spec) -> spec with concrete sites / modules
    shapes: Callable                    # (cfg, spec) -> {group: {leaf: shape}}
    init: Callable                      # (cfg, spec, rng) -> {group: {leaf: host array}}
    delta: Optional[Callable] = None    # (spec, p, h) -> shift of h   (activation adapters)
    weights: Optional[Callable] = None  # (spec, p, params) -> params  (weight adapters)
    affine: Optional[Callable] = None   # (spec, p) -> (P, Q, c) with delta(h) = P Q h + c (any may be
                                        # None), or None if delta is nonlinear; used by fold.py
    penalty: Optional[Callable] = None  # (cfg, spec, params, step) -> scalar added to the training loss
                                        # (LoFiT's L1, JoLA's L0); never part of adapted_loss
    sample: Optional[Callable] = None   # (cfg, spec, rng) -> {site: {leaf: host array}}: random draws of
                                        # one training step (JoLA's gate noise), merged into ``delta``'s p
    site_spec: Optional[Callable] = None  # (spec, site) -> the spec ``delta`` sees at that site (LoFiT:
                                          # which heads of this layer carry an offset)
    parts: Optional[Callable] = None    # (spec, p) -> [(spec, p), ...]: the interventions one site holds,
                                        # each with its own positions and arrays (ReFT, share_weights=False)


KINDS = {}


def register(kind):
    KINDS[kind.name] = kind
    return kind


def get_kind(name):
    if name not in KINDS:
        raise KeyError(f"unknown adapter kind {name!r}; valid kinds: {sorted(KINDS)}")
    return KINDS[name]


def make_spec(cfg, kind, **fields):
    """The complete, concrete, JSON-able spec of an adapter (patterns resolved for ``cfg``)."""
    k = get_kind(kind)
    unknown = set(fields) - set(k.fields)
    if unknown:
        raise TypeError(f"{kind} adapter got unknown field(s) {sorted(unknown)}; valid: {sorted(k.fields)}")
    spec = k.resolve(cfg, {"kind": kind, **k.fields, **fields})
    return json.loads(json.dumps(spec, default=_json_default))  # tuples -> lists, as after a save


def _json_default(x):
    if isinstance(x, np.ndarray) or hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"adapter spec values must be JSON-able, got {type(x).__name__}")


def init_adapter(cfg, spec, seed=0):
    """An ``Adapter`` for a concrete ``spec``, initialized from a seeded host RNG."""
    host = get_kind(spec["kind"]).init(cfg, spec, np.random.default_rng(seed))
    return Adapter(spec, {g: {leaf: from_numpy(a, cfg.dtype) for leaf, a in p.items()} for g, p in host.items()})


def check_rank(r, what="rank r"):
    """A rank is a positive int (``True`` is an int to Python, but not a rank)."""
    if not isinstance(r, numbers.Integral) or isinstance(r, bool) or r < 1:
        raise ValueError(f"{what} must be a positive int, got {r!r}")
    return int(r)


def check_scale(alpha, what="alpha"):
    """A scale such as LoRA's or the steering adapter's alpha: a finite, nonzero number
    (0 would freeze the adapter at a no-op: its gradient is 0 too)."""
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha == 0:
        raise ValueError(f"{what} must be a finite nonzero number, got {alpha!r}")
    return float(alpha)


def width(cfg, site):
    """The last axis of ``site``: the width an adapter reads and writes there."""
    return site_shape(cfg, site)[-1]


def kaiming_uniform(rng, shape):
    """PyTorch's default Linear init, kaiming-uniform(a=sqrt 5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / shape[-1] ** 0.5
    return rng.uniform(-bound, bound, shape)


def check_adapter(cfg, name, adapter):
    """Raise a ``ValueError`` naming the first array of ``adapter`` whose shape is not what its
    spec and ``cfg`` imply (built for another model width, another rank, or edited by hand)."""
    if adapter.kind == "full":
        return  # its params are the base tree: forward checks them against cfg
    sites = adapter.spec.get("sites", ())
    unknown = [s for s in sites if s not in set(site_names(cfg))] if sites else []
    if unknown:
        raise ValueError(f"adapter {name!r} ({adapter.kind}) does not fit this model: it edits {unknown[:3]}, "
                         f"which this config has no site for (built for a deeper model?)")
    try:
        expected = get_kind(adapter.kind).shapes(cfg, adapter.spec)
    except (KeyError, ValueError, IndexError) as err:
        raise ValueError(f"adapter {name!r} ({adapter.kind}) does not fit this model: {err}") from None
    params = _as_dict(adapter.params)  # under fit, autograd boxes the dicts
    for group, leaves in expected.items():
        for leaf, shape in leaves.items():
            got = _as_dict(params.get(group)).get(leaf)
            if got is None:
                raise ValueError(f"adapter {name!r} ({adapter.kind}) has no array {leaf!r} for {group!r}")
            if tuple(got.shape) != tuple(shape):
                raise ValueError(f"adapter {name!r} ({adapter.kind}): {group}/{leaf} has shape {list(got.shape)}, "
                                 f"but its spec on this model needs {list(shape)} (built for another width "
                                 "or rank?)")
    extra = sorted(set(params) - set(expected))
    if extra:
        raise ValueError(f"adapter {name!r} ({adapter.kind}) has arrays for {extra}, which its spec does not list")


def _as_dict(node):
    node = getval(node)
    return node if isinstance(node, dict) else {}


def check_adapters(cfg, adapters):
    """``as_adapters(adapters)``, each one checked against ``cfg``."""
    adapters = as_adapters(adapters)
    for name, a in adapters.items():
        check_adapter(cfg, name, a)
    return adapters

# ---------------------------------------------------------------- applying a set of adapters


def as_adapters(adapters):
    """``{name: Adapter}`` from a dict, a list (named by kind) or a single Adapter."""
    if adapters is None:
        return {}
    if isinstance(adapters, Adapter):
        return {adapters.kind: adapters}
    if isinstance(adapters, dict):
        out = adapters
    else:
        out = {}
        for a in adapters:
            name, i = a.kind, 1
            while name in out:
                name, i = f"{a.kind}_{i}", i + 1
            out[name] = a
    for name, a in out.items():
        if not isinstance(a, Adapter):
            raise TypeError(f"adapters[{name!r}] is a {type(a).__name__}, not an Adapter")
    return out


def adapted_params(params, adapters):
    """Effective base weights: ``full`` replaces them, then each ``lora`` adds ``s B A``."""
    return _effective_weights(params, as_adapters(adapters))


def _effective_weights(params, adapters):  # adapters: already {name: Adapter}
    for a in adapters.values():
        if a.kind == "full":
            params = a.params
    for a in adapters.values():
        kind = get_kind(a.kind)
        if kind.weights is not None:
            params = kind.weights(a.spec, a.params, params)
    return params


def adapter_hooks(adapters, prompt_lengths=None, draws=None):
    """``{site: [hook, ...]}`` for the activation adapters, in order.

    ``draws`` -- ``{adapter name: {site: {leaf: array}}}``: a training step's random draws
    (``Kind.sample``), seen by ``delta`` beside the params. Without them an adapter runs in
    evaluation mode (JoLA: deterministic gates).
    """
    return _activation_hooks(as_adapters(adapters), prompt_lengths, draws)


def _activation_hooks(adapters, prompt_lengths, draws):  # adapters: already {name: Adapter}
    hooks = {}
    for name, a in adapters.items():
        kind = get_kind(a.kind)
        if kind.delta is not None:
            for site in a.spec["sites"]:
                p = a.params[site]
                if draws and name in draws:
                    p = {**p, **draws[name][site]}
                spec = a.spec if kind.site_spec is None else kind.site_spec(a.spec, site)
                for part_spec, part_p in ([(spec, p)] if kind.parts is None else kind.parts(spec, p)):
                    hooks.setdefault(site, []).append(_shift_hook(kind.delta, part_spec, part_p, prompt_lengths))
    return hooks


def _shift_hook(delta, spec, p, prompt_lengths):
    def hook(h, name):  # h + mask * delta(h), with mask = 1 at the edited positions
        shift = delta(spec, p, h)
        mask = position_mask(spec.get("positions"), h.shape[0], h.shape[1], prompt_lengths)
        if mask is None:
            return h + shift
        return h + mask.astype(h.dtype).reshape(mask.shape + (1,) * (h.ndim - 2)) * shift
    return hook


def _all_hooks(cfg, adapters, hooks, prompt_lengths, draws=None):  # adapters: already {name: Adapter}
    merged = _activation_hooks(adapters, prompt_lengths, draws)
    for name, fns in resolve_hooks(cfg, hooks).items():  # the caller's hooks run after the adapters'
        merged.setdefault(name, []).extend(fns)
    return merged


def fused_layers(cfg, adapters, hooks=None):
    """The layers that run as one fused node (``model.fused_layers``) with ``adapters`` and
    ``hooks``: weight adapters and boundary-site adapters keep every layer fused; an adapter
    at a site inside a block (pre-MLP, attention output, LoFiT/JoLA heads) sends that layer
    back to the hooked path."""
    return _model_fused_layers(cfg, _all_hooks(cfg, as_adapters(adapters), hooks, None))


def adapted_forward(params, adapters, tokens, cfg, hooks=None, prompt_lengths=None):
    """Logits [B, T, V] of the base ``params`` with ``adapters`` applied (one call, any mix)."""
    adapters = check_adapters(cfg, adapters)  # normalized once, used by both sides below
    return forward(_effective_weights(params, adapters), tokens, cfg, _all_hooks(cfg, adapters, hooks, prompt_lengths))


def adapted_loss(params, adapters, tokens, cfg, mask=None, targets=None, hooks=None, prompt_lengths=None,
                 draws=None):
    """``model.loss_fn`` with adapters. ``mask`` [B, T] = 1 on supervised completion tokens;
    it also fixes the prompt length for pyreft-style ``"f<k>+l<k>"`` positions.
    ``draws``: a training step's random draws (see ``adapter_hooks``); None = evaluation mode."""
    adapters = check_adapters(cfg, adapters)
    if prompt_lengths is None and mask is not None:
        prompt_lengths = prompt_lengths_from_mask(mask)
    return loss_fn(_effective_weights(params, adapters), tokens, cfg, targets=targets, mask=mask,
                   hooks=_all_hooks(cfg, adapters, hooks, prompt_lengths, draws))


def stepwise_loss(params, adapters, tokens, cfg, mask):
    """The official code's ``StepwiseTrainer`` loss (https://github.com/SprocketLab/steerling,
    ``custom_trainer.py``): token t+1 is predicted from a forward pass over the prefix
    ``tokens[:, :t+1]`` alone, so an adapter with ``positions="last"`` (``--intervene-last``)
    edits exactly the position that predicts. Mean cross-entropy over supervised targets
    (``mask[:, t+1] = 1``); one forward pass per supervised position, so T times the cost."""
    from .. import ops
    from ..backend import as_backend_array, raw
    mask_host = np.asarray(mask) > 0
    total, count = 0.0, 0
    for t in range(tokens.shape[1] - 1):
        rows = np.nonzero(mask_host[:, t + 1])[0]
        if rows.size == 0:  # nothing supervised at t + 1: this prefix is never run
            continue
        logits = adapted_forward(params, adapters, tokens[rows, :t + 1], cfg)[:, -1, :]  # [b, V]
        weights = raw.ones((rows.size,), dtype=logits.dtype)
        total = total + rows.size * ops.cross_entropy(logits, as_backend_array(tokens[rows, t + 1]), weights)
        count += rows.size
    if count == 0:
        raise ValueError("stepwise_loss: the mask supervises no position after the first")
    return total / count


def trainable_of(adapters):
    """``{name: adapter.params}``: the pytree ``fit`` optimizes."""
    return {name: a.params for name, a in as_adapters(adapters).items()}


def with_trainable(adapters, trainable):
    """The adapters with their arrays replaced by ``trainable`` (same names)."""
    return {name: a.with_params(trainable[name]) for name, a in as_adapters(adapters).items()}


def objective(params, adapters, cfg, seed=0, stepwise=False):
    """``(trainable, batch, step) -> loss`` for ``fit(..., pass_step=True)``: the
    completion-only SFT loss, base frozen, plus every adapter's ``Kind.penalty`` (LoFiT's L1,
    JoLA's L0), in training mode.

    ``batch`` is ``{"tokens": int [B, T], "mask": float [B, T]}`` or a bare token array.
    At optimizer step i the adapters' training noise (``Kind.sample``) is drawn from
    ``default_rng([seed, i, adapter index])`` and i is given to the penalties' schedules, so a
    run, resumed or not, is bitwise reproducible from ``seed``.
    ``stepwise`` -- use ``stepwise_loss`` (the official ``--intervene-last`` training).
    """
    adapters = as_adapters(adapters)
    kinds = {name: get_kind(a.kind) for name, a in adapters.items()}

    def loss(trainable, batch, step):
        if not isinstance(batch, dict):
            batch = {"tokens": batch}
        current = with_trainable(adapters, trainable)
        draws = {}
        for i, (name, a) in enumerate(current.items()):
            if kinds[name].sample is not None:
                host = kinds[name].sample(cfg, a.spec, np.random.default_rng([seed, step, i]))
                draws[name] = {s: {k: from_numpy(v, cfg.dtype) for k, v in p.items()} for s, p in host.items()}
        if stepwise:
            if draws:
                raise ValueError("stepwise training of adapters with random draws is not supported")
            value = stepwise_loss(params, current, batch["tokens"], cfg, batch["mask"])
        else:
            value = adapted_loss(params, current, batch["tokens"], cfg, mask=batch.get("mask"), draws=draws)
        for name, a in current.items():
            if kinds[name].penalty is not None:
                value = value + kinds[name].penalty(cfg, a.spec, a.params, step)
        return value
    return loss
