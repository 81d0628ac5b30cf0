"""Every method the paper compares, by name, and one call to train it.

``METHODS[name]`` holds the adapters (name -> spec fields), the default learning rate,
the paper's 5-point lr grid (NOTES.md §8: SFT, LoRA, steering grids) and, for joint
methods, the orthogonality constraint (NOTES.md §7). ``train_method`` builds the adapters
on a frozen base and runs ``fit`` on the completion-only SFT loss.

Names: full, lora, loreft, direft, postblock_linear, postblock_silu, postblock_vector,
postblock_r1, attnout_r8, premlp_r8, postmlp_r8, joint_naive, joint_orth_input,
joint_orth_output. Smoke-tested in tests/test_adapters_train.py.
"""
import math

from ..train import fit
from .core import as_adapters, get_kind, init_adapter, make_spec, objective, trainable_of, with_trainable
from .joint import orth_projector
from .lora import full

SFT_GRID = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4)
LORA_GRID = (5e-5, 1e-4, 3e-4, 7e-4, 1.5e-3)
STEER_GRID = (5e-4, 1e-3, 2e-3, 3e-3, 5e-3)

LORA8_ALL = dict(kind="lora", r=8, alpha=8.0, targets="all-linear")  # = q,k,v,o,gate,up,down (gelu: no gate)
POSTBLOCK = dict(kind="lowrank", sites="post_block", r=8, activation="silu")


def _method(adapters, lr, grid, orth=None, doc=""):
    return dict(adapters=adapters, lr=lr, lr_grid=grid, orth=orth, doc=doc)


METHODS = {
    "full": _method({"full": dict(kind="full")}, 2e-5, SFT_GRID, doc="full fine-tuning (SFT)"),
    "lora": _method({"lora": LORA8_ALL}, 3e-4, LORA_GRID, doc="LoRA r=8 on q,k,v,o,gate,up,down"),
    "loreft": _method({"reft": dict(kind="loreft", r=8, positions="f1+l1")}, 2e-3, STEER_GRID,
                      doc="LoReFT r=8 at block outputs, first+last prompt token"),
    "direft": _method({"reft": dict(kind="direft", r=8, positions="f1+l1")}, 2e-3, STEER_GRID,
                      doc="DiReFT r=8 at block outputs, first+last prompt token"),
    "postblock_linear": _method({"steer": dict(POSTBLOCK, activation="linear")}, 2e-3, STEER_GRID,
                                doc="post-block low-rank r=8, phi = identity"),
    "postblock_silu": _method({"steer": POSTBLOCK}, 2e-3, STEER_GRID, doc="post-block low-rank r=8, phi = SiLU"),
    "postblock_vector": _method({"steer": dict(kind="vector", sites="post_block")}, 2e-3, STEER_GRID,
                                doc="one post-block vector per layer, every token"),
    "postblock_r1": _method({"steer": dict(POSTBLOCK, r=1)}, 2e-3, STEER_GRID, doc="post-block rank 1, SiLU"),
    "attnout_r8": _method({"steer": dict(POSTBLOCK, sites="blocks.*.hook_attn_out")}, 2e-3, STEER_GRID,
                          doc="low-rank r=8 on the attention output"),
    "premlp_r8": _method({"steer": dict(POSTBLOCK, sites="pre_mlp")}, 2e-3, STEER_GRID,
                         doc="low-rank r=8 on the normalized MLP input"),
    "postmlp_r8": _method({"steer": dict(POSTBLOCK, sites="post_mlp")}, 2e-3, STEER_GRID,
                          doc="low-rank r=8 on the MLP output"),
    "joint_naive": _method({"lora": LORA8_ALL, "steer": POSTBLOCK}, 2e-4, LORA_GRID,
                           orth=dict(mode="none"), doc="LoRA + post-block, one loss"),
    "joint_orth_input": _method({"lora": LORA8_ALL, "steer": POSTBLOCK}, 2e-4, LORA_GRID,
                                orth=dict(mode="input", every="step"), doc="joint, D <- D (I - V V^T) (official code)"),
    "joint_orth_output": _method({"lora": LORA8_ALL, "steer": POSTBLOCK}, 2e-4, LORA_GRID,
                                 orth=dict(mode="output", every="step"), doc="joint, U <- (I - V V^T) U"),
}


def method_specs(name, **overrides):
    """``{adapter name: spec fields}`` of a method, with ``overrides`` applied.

    An override named after one of the method's adapters is a dict for that adapter
    (``lora={"r": 4}``); any other is a field set on every adapter that has it (``r=4``).
    """
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {sorted(METHODS)}")
    specs = {k: dict(v) for k, v in METHODS[name]["adapters"].items()}
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
                 progress=False, callback=None, **overrides):
    """Train method ``name`` on ``data`` against the frozen base ``params``.

    data -- ``fit``'s data: a function ``step -> batch`` or an iterable of batches, each
            ``{"tokens": int [B, T], "mask": float [B, T]}`` (mask 1 = supervised completion token).
    lr   -- default ``METHODS[name]["lr"]``; ``group_lr`` maps adapter names to their own lr.
    warmup -- steps of linear warmup; default 3% of ``steps`` (the paper code's 0.03).
    orth_every -- joint methods: "step" (default), "init" or N steps.
    adapters -- start from these instead of a fresh init (e.g. to continue training).
    overrides -- adapter fields, e.g. ``r=4``, ``activation="relu"``, ``lora={"r": 16}``.
    Returns ``(adapters, FitResult)``; the base ``params`` are never modified.
    """
    if adapters is not None and overrides:
        raise TypeError(f"pass either adapters= or field overrides {sorted(overrides)}, not both")
    adapters = as_adapters(adapters) if adapters is not None else build_method(name, cfg, params, seed, **overrides)
    orth = METHODS[name]["orth"]
    project = None
    if orth is not None and orth["mode"] != "none":
        project = orth_projector(orth["mode"], orth_every or orth["every"])
    result = fit(objective(params, adapters, cfg), trainable_of(adapters), data, steps=steps,
                 lr=METHODS[name]["lr"] if lr is None else lr, weight_decay=weight_decay, schedule=schedule,
                 warmup=math.ceil(0.03 * steps) if warmup is None else warmup, clip=clip, group_lr=group_lr,
                 project=project, progress=progress, callback=callback)
    return with_trainable(adapters, result.params), result
