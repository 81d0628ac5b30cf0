"""Adapters as data, and the one call that runs a model with a set of them.

An ``Adapter`` is a JSON-able ``spec`` (what it is: kind, sites or target modules,
rank, positions, activation, ...) plus ``params``, a pytree of arrays (what it has
learned). No closures: ``autograd.grad`` differentiates the arrays, ``fit`` updates
them, ``save_adapters`` writes them with the spec beside them.

Two families, one mechanism each:

* **weight adapters** (``full``, ``lora``) return *effective weights*, computed inside the
  traced function from the frozen base (``W + s B A``); the base is never mutated.
* **activation adapters** (``vector``, ``lowrank``, ``loreft``, ``direft``) become hooks
  ``h -> h + mask * delta(h)`` on ``model.forward``, built from the data at call time.

A set of adapters is a dict ``{name: Adapter}`` (its names are the top-level keys of
the trainable pytree, so ``fit(group_lr={"lora": ..., "steer": ...})`` works); a single
Adapter or a list is accepted too. Hooks at one site run in the dict's order.
Tests: tests/test_adapters_core.py (exact no-op at init, the formulas at a site, positions,
composition), tests/test_adapters_backend.py (the same on the CuPy code path).
"""
import json
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np  # host side only: seeded initialization

from ..backend import from_numpy
from ..model import loss_fn, forward
from ..sites import resolve_hooks
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
    for a in as_adapters(adapters).values():
        if a.kind == "full":
            params = a.params
    for a in as_adapters(adapters).values():
        kind = get_kind(a.kind)
        if kind.weights is not None:
            params = kind.weights(a.spec, a.params, params)
    return params


def adapter_hooks(adapters, prompt_lengths=None):
    """``{site: [hook, ...]}`` for the activation adapters, in order."""
    hooks = {}
    for a in as_adapters(adapters).values():
        kind = get_kind(a.kind)
        if kind.delta is not None:
            for site in a.spec["sites"]:
                hooks.setdefault(site, []).append(_shift_hook(kind.delta, a.spec, a.params[site], prompt_lengths))
    return hooks


def _shift_hook(delta, spec, p, prompt_lengths):
    def hook(h, name):  # h + mask * delta(h), with mask = 1 at the edited positions
        shift = delta(spec, p, h)
        mask = position_mask(spec.get("positions"), h.shape[0], h.shape[1], prompt_lengths)
        if mask is None:
            return h + shift
        return h + mask.astype(h.dtype).reshape(mask.shape + (1,) * (h.ndim - 2)) * shift
    return hook


def _all_hooks(cfg, adapters, hooks, prompt_lengths):
    merged = adapter_hooks(adapters, prompt_lengths)
    for name, fns in resolve_hooks(cfg, hooks).items():  # the caller's hooks run after the adapters'
        merged.setdefault(name, []).extend(fns)
    return merged


def adapted_forward(params, adapters, tokens, cfg, hooks=None, prompt_lengths=None):
    """Logits [B, T, V] of the base ``params`` with ``adapters`` applied (one call, any mix)."""
    return forward(adapted_params(params, adapters), tokens, cfg, _all_hooks(cfg, adapters, hooks, prompt_lengths))


def adapted_loss(params, adapters, tokens, cfg, mask=None, targets=None, hooks=None, prompt_lengths=None):
    """``model.loss_fn`` with adapters. ``mask`` [B, T] = 1 on supervised completion tokens;
    it also fixes the prompt length for pyreft-style ``"f<k>+l<k>"`` positions."""
    if prompt_lengths is None and mask is not None:
        prompt_lengths = prompt_lengths_from_mask(mask)
    return loss_fn(adapted_params(params, adapters), tokens, cfg, targets=targets, mask=mask,
                   hooks=_all_hooks(cfg, adapters, hooks, prompt_lengths))


def trainable_of(adapters):
    """``{name: adapter.params}``: the pytree ``fit`` optimizes."""
    return {name: a.params for name, a in as_adapters(adapters).items()}


def with_trainable(adapters, trainable):
    """The adapters with their arrays replaced by ``trainable`` (same names)."""
    return {name: a.with_params(trainable[name]) for name, a in as_adapters(adapters).items()}


def objective(params, adapters, cfg):
    """``(trainable, batch) -> loss`` for ``fit``: the completion-only SFT loss, base frozen.

    ``batch`` is ``{"tokens": int [B, T], "mask": float [B, T]}`` or a bare token array.
    """
    adapters = as_adapters(adapters)
    def loss(trainable, batch):
        if not isinstance(batch, dict):
            batch = {"tokens": batch}
        return adapted_loss(params, with_trainable(adapters, trainable), batch["tokens"], cfg,
                            mask=batch.get("mask"))
    return loss
