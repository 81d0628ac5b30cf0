"""Adaptation methods as data: full fine-tuning, LoRA, steering vectors, the paper's
post-block low-rank steering, ReFT (LoReFT, DiReFT, NoDiReFT), the head-level baselines
LoFiT and JoLA, and joint LoRA + steering.

    from ministeer import adapters as A
    steer = A.lowrank(cfg, sites="post_block", r=8, activation="silu")   # h + U silu(D h)
    lora = A.lora(cfg, r=8, targets=["q", "v"])
    logits = A.adapted_forward(params, {"lora": lora, "steer": steer}, tokens, cfg)
    trained, result = A.train_method("postblock_silu", params, cfg, batches, steps=200)
    A.count_params(cfg, "postblock_silu")   # ParamCount(trainable, base, percent)

See ``core.py`` for the data model and ``methods.py`` for the method registry.
"""
from . import full as _full, jola as _jola, lofit as _lofit, lora as _lora, reft as _reft, steer as _steer  # noqa: F401
from .core import (KINDS, Adapter, adapted_forward, adapted_loss, adapted_params, adapter_hooks, as_adapters,
                   fused_layers, init_adapter, make_spec, objective, stepwise_loss, trainable_of, with_trainable)
from .count import ParamCount, adapter_size, base_param_count, count_params
from .fold import FoldError, fold
from .jola import gates, jola
from .joint import (INFERENCE_MODES, column_basis, full_basis, inference_logits_fns, inference_modes, orth_projector,
                    project_joint)
from .lofit import head_norms, lofit, lofit_scale, select_heads, train_lofit
from .full import full
from .lora import delta_weight, linear_modules, lora, merge_lora, resolve_targets, unmerge_lora
from .methods import METHODS, Method, build_method, method_specs, train_method
from .positions import position_mask
from .recipes import OFFICIAL, RECIPES, fit_settings, official_setup
from .reft import direft, loreft, nodireft, orthonormal_rows, rotation
from .saving import load_adapters, save_adapters
from .steer import ACTIVATIONS, lowrank, steering_vector

__all__ = ["ACTIVATIONS", "Adapter", "FoldError", "INFERENCE_MODES", "KINDS", "METHODS", "Method", "OFFICIAL",
           "ParamCount", "RECIPES", "adapted_forward", "adapted_loss", "adapted_params", "adapter_hooks",
           "adapter_size", "as_adapters", "base_param_count", "build_method", "column_basis",
           "count_params", "delta_weight", "direft", "fit_settings", "fold", "full", "full_basis",
           "fused_layers", "gates", "head_norms", "inference_logits_fns", "inference_modes", "init_adapter",
           "jola", "linear_modules", "load_adapters", "lofit", "lofit_scale", "lora", "loreft", "lowrank",
           "make_spec", "merge_lora", "method_specs", "nodireft", "objective", "official_setup",
           "orth_projector", "orthonormal_rows", "position_mask", "project_joint", "resolve_targets",
           "rotation", "save_adapters", "select_heads", "steering_vector", "stepwise_loss", "train_lofit",
           "train_method", "trainable_of", "unmerge_lora", "with_trainable"]
