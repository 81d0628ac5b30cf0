"""Every method the paper compares, by name, and one call to train it.

``METHODS[name]`` is a ``Method``: the adapters (name -> spec fields), the label shown in
tables, the default learning rate and, for joint methods, the orthogonality constraint
(docs/06-joint-adaptation.md). ``train_method`` builds the adapters on a frozen base and runs
``fit`` on the completion-only SFT loss. How a method is tuned on this project's toy benchmark
(its learning-rate grid) belongs to the experiments: ``experiments/grids.py``.

Names: full, lora, lora_r1, lora_r2 (the size-matched weight-space baselines), loreft
(prompt positions f1+l1, one intervention shared by both: pyreft's ``--share_weights``),
loreft_all (every position, prompt and generated), direft, nodireft, postblock_linear, postblock_silu, postblock_vector, postblock_r1,
postblock_r2, postblock_r4 (the rank sweep), attnout_r8, premlp_r8, postmlp_r8,
submodules_r8, lofit, jola, joint_naive, joint_orth_input, joint_orth_output,
joint_orth_official. Smoke-tested in tests/test_adapters_train.py.
"""
import math
from dataclasses import dataclass
from typing import Callable

from ..train import fit
from .core import as_adapters, get_kind, init_adapter, make_spec, objective, trainable_of, with_trainable
from .joint import orth_projector
from .lofit import train_lofit
from .full import full

LORA8_ALL = dict(kind="lora", r=8, alpha=8.0, targets="all-linear")  # = q,k,v,o,gate,up,down (gelu: no gate)
POSTBLOCK = dict(kind="lowrank", sites="post_block", r=8, activation="silu")


@dataclass(frozen=True)
class Method:
    """One method: which adapters, how it is shown, its default learning rate and how it trains.

    adapters -- ``{adapter name: spec fields}``, built by ``build_method``.
    label    -- the name printed in tables and figures.
    lr       -- the default learning rate of ``train_method``: the paper's value for 1B-8B
                models; toy-scale runs pass their own (``experiments/grids.py``).
    orth     -- joint methods: the orthogonality projection (``joint.orth_projector``).
    train    -- methods whose training is not one ``fit`` (LoFiT's two steps): called by
                ``train_method`` as ``train(params, cfg, data, steps=, lr=, seed=, adapters=, **fit options)``.
    """
    adapters: dict
    label: str
    lr: float
    orth: dict = None
    train: Callable = None


METHODS = {
    "full": Method({"full": dict(kind="full")}, "Full FT", 2e-5),
    "lora": Method({"lora": LORA8_ALL}, "LoRA r=8", 3e-4),
    "lora_r1": Method({"lora": dict(LORA8_ALL, r=1, alpha=1.0)}, "LoRA r=1", 3e-4),
    "lora_r2": Method({"lora": dict(LORA8_ALL, r=2, alpha=2.0)}, "LoRA r=2", 3e-4),
    "loreft": Method({"reft": dict(kind="loreft", r=8, positions="f1+l1")}, "LoReFT r=8", 2e-3),
    "direft": Method({"reft": dict(kind="direft", r=8, positions="f1+l1")}, "DiReFT r=8", 2e-3),
    "postblock_linear": Method({"steer": dict(POSTBLOCK, activation="linear")}, "Post-block r=8 (linear)",
                               2e-3),
    "postblock_silu": Method({"steer": POSTBLOCK}, "Post-block r=8 (SiLU)", 2e-3),
    "postblock_vector": Method({"steer": dict(kind="vector", sites="post_block")}, "Post-block vector",
                               2e-3),
    "postblock_r1": Method({"steer": dict(POSTBLOCK, r=1)}, "Post-block r=1", 2e-3),
    "postblock_r2": Method({"steer": dict(POSTBLOCK, r=2)}, "Post-block r=2", 2e-3),
    "postblock_r4": Method({"steer": dict(POSTBLOCK, r=4)}, "Post-block r=4", 2e-3),
    "attnout_r8": Method({"steer": dict(POSTBLOCK, sites="blocks.*.hook_attn_out")}, "Attn-out r=8 (SiLU)",
                         2e-3),
    "premlp_r8": Method({"steer": dict(POSTBLOCK, sites="pre_mlp")}, "Pre-MLP r=8 (SiLU)", 2e-3),
    "postmlp_r8": Method({"steer": dict(POSTBLOCK, sites="post_mlp")}, "Post-MLP r=8 (SiLU)", 2e-3),
    "joint_naive": Method({"lora": LORA8_ALL, "steer": POSTBLOCK}, "Joint LoRA+post-block (naive)", 2e-4, orth=dict(mode="none")),
    "joint_orth_input": Method({"lora": LORA8_ALL, "steer": POSTBLOCK}, "Joint, orth. input (D)", 2e-4, orth=dict(mode="input", every="step")),
    "joint_orth_output": Method({"lora": LORA8_ALL, "steer": POSTBLOCK}, "Joint, orth. output (U)", 2e-4, orth=dict(mode="output", every="step")),
}

# The paper's head-level baselines and the official code's options.
METHODS.update({
    # pyreft's NodireftIntervention: DiReFT with R unconstrained ("direft" keeps R orthonormal, as pyreft does)
    "nodireft": Method({"reft": dict(kind="nodireft", r=8, positions="f1+l1")}, "NoDiReFT r=8", 2e-3),
    # the official --submodules: one adapter on the post-attention-norm output (pre-MLP) and one on the MLP output
    "submodules_r8": Method({"steer": dict(POSTBLOCK, sites=["pre_mlp", "post_mlp"])},
                            "Pre-MLP + post-MLP r=8 (--submodules)", 2e-3),
    # LoReFT on every position, prompt and generated tokens alike (pyreft's positions are prompt-only:
    # "loreft" edits the first and last prompt token, one intervention shared by both)
    "loreft_all": Method({"reft": dict(kind="loreft", r=8, positions=None)}, "LoReFT r=8 (all positions)", 2e-3),
    # LoFiT (lofit.py): lr is the offset step's (official 1e-2); the head-selection step uses lr / 20 and
    # L1 5e-3 (the CLUTRR script's); K = lofit.default_k(cfg), the scripts' 32 of 1024 heads, at least one
    "lofit": Method({"lofit": dict(kind="lofit", k=None)}, "LoFiT", 1e-2, train=train_lofit),
    # JoLA (jola.py): the official config's lr 5e-3
    "jola": Method({"jola": dict(kind="jola")}, "JoLA", 5e-3),
    # the official code's projection exactly: input side, all r singular vectors, every 100 steps, no final projection
    "joint_orth_official": Method({"lora": LORA8_ALL, "steer": POSTBLOCK}, "Joint, orth. input (official)", 2e-4, orth=dict(mode="official")),
})


def method_specs(name, **overrides):
    """``{adapter name: spec fields}`` of a method, with ``overrides`` applied.

    An override named after one of the method's adapters is a dict for that adapter
    (``lora={"r": 4}``); any other is a field set on every adapter that has it (``r=4``).
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {sorted(METHODS)}")
    specs = {k: dict(v) for k, v in METHODS[name].adapters.items()}
    for key, value in overrides.items():
        if key in specs:
            specs[key].update(value)
            continue
        takers = [s for s in specs.values() if key in get_kind(s["kind"]).fields]
        if not takers:
            raise TypeError(f"method {name!r} has no adapter field {key!r}; fields: "
                            f"{sorted({f for s in specs.values() for f in get_kind(s['kind']).fields})}")
        for s in takers:
            s[key] = value
    return specs


def build_method(name, cfg, params=None, seed=0, **overrides):
    """``{adapter name: Adapter}`` for a method, freshly initialized (``full`` needs ``params``)."""
    adapters = {}
    for i, (key, fields) in enumerate(method_specs(name, **overrides).items()):
        if fields["kind"] == "full":
            if params is None:
                raise TypeError("full fine-tuning starts from the base weights: pass params")
            adapters[key] = full(params)
        else:
            kind = fields["kind"]
            spec = make_spec(cfg, kind, **{k: v for k, v in fields.items() if k != "kind"})
            adapters[key] = init_adapter(cfg, spec, seed + i)
    return adapters


def train_method(name, params, cfg, data, *, steps=100, lr=None, seed=0, schedule="linear", warmup=None,
                 weight_decay=0.0, clip=None, group_lr=None, orth_every=None, adapters=None,
                 progress=False, callback=None, intervene_last=False, checkpoint_dir=None, checkpoint_every=None,
                 keep=2, resume=None, **overrides):
    """Train method ``name`` on ``data`` against the frozen base ``params``.

    data -- ``fit``'s data: a function ``step -> batch`` or an iterable of batches, each
            ``{"tokens": int [B, T], "mask": float [B, T]}`` (mask 1 = supervised completion token).
    lr   -- default ``METHODS[name].lr``; ``group_lr`` maps adapter names to their own lr.
    warmup -- steps of linear warmup; default 3% of ``steps`` (the paper code's 0.03).
    orth_every -- joint methods: "step", "init" or N steps (default: the method's ``orth``).
    adapters -- start from these instead of a fresh init (e.g. to continue training).
    intervene_last -- the official ``--intervene-last``: activation adapters edit only the last
            position of each forward pass (``positions="last"``), trained with the official
            stepwise loss (``core.stepwise_loss``: one forward pass per supervised token).
            ``"last"`` is the last position of the input, not of each row: evaluate such
            adapters with ``accuracy(..., same_length_batches=True)`` (or ``greedy_complete``'s),
            which decodes prompts of one length per batch.
    checkpoint_dir, checkpoint_every, keep, resume -- ``fit``'s training-state checkpoints; the
            method name and the adapter specs are stored with them, so a resume under other
            ones is refused. Not for methods with their own staged training (LoFiT).
    overrides -- adapter fields, e.g. ``r=4``, ``activation="relu"``, ``lora={"r": 16}``.
    Returns ``(adapters, FitResult)``; the base ``params`` are never modified.
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {sorted(METHODS)}")
    if adapters is not None and overrides:
        raise TypeError(f"pass either adapters= or field overrides {sorted(overrides)}, not both")
    if intervene_last:
        if adapters is not None:
            raise TypeError("intervene_last builds its own adapters (positions='last'); pass no adapters=")
        specs = method_specs(name, **overrides)
        overrides = {k: {"positions": "last"} for k, s in specs.items() if "positions" in get_kind(s["kind"]).fields}
    if adapters is None and (METHODS[name].train is None or overrides):
        adapters = build_method(name, cfg, params, seed, **overrides)
    adapters = None if adapters is None else as_adapters(adapters)
    orth = METHODS[name].orth
    project = None
    if orth is not None and orth["mode"] != "none":
        every = orth_every or orth.get("every")
        project = orth_projector(orth["mode"], every, steps=steps)
    options = dict(weight_decay=weight_decay, schedule=schedule, clip=clip, group_lr=group_lr, project=project,
                   warmup=math.ceil(0.03 * steps) if warmup is None else warmup, progress=progress, callback=callback)
    lr = METHODS[name].lr if lr is None else lr
    if METHODS[name].train is not None:
        if checkpoint_dir is not None or resume not in (None, False):
            raise ValueError(f"{name} trains in stages with its own train function: training-state checkpoints "
                             "(checkpoint_dir=, resume=) are not supported for it")
        return METHODS[name].train(params, cfg, data, steps=steps, lr=lr, seed=seed, adapters=adapters, **options)
    result = fit(objective(params, adapters, cfg, seed, stepwise=intervene_last), trainable_of(adapters), data,
                 steps=steps, lr=lr, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, keep=keep,
                 resume=resume, run={"method": name, "specs": {n: a.spec for n, a in adapters.items()},
                                     "seed": seed, "intervene_last": intervene_last}, pass_step=True, **options)
    return with_trainable(adapters, result.params), result
