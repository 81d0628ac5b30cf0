"""One block, one MLP, as plain functions of their own parameters.

The theory needs the block map T_l: H -> block output (docs/02-weight-updates-as-shifts.md
eq. (2.9)) and the MLP map x -> y (docs/03-glu-and-pre-mlp.md eq. (3.1)) on their own,
evaluated on any stream H -- the base one, the fine-tuned one, or a steered one. They
reuse ``model.block`` and ``model.mlp`` with no hooks, so they are the model's code, not
a copy of it.
"""
from .. import model, ops


def _no_hooks(x, name):
    return x


def _rope(h, cfg):
    return ops.rope_tables(h.shape[1], cfg.d_head, cfg.rope_theta, cfg.dtype) if cfg.pos == "rope" else None


def block_params(params, layer):
    """The parameter subtree of block ``layer`` (a KeyError names the valid layers)."""
    layers = params["model"]["layers"]
    if not 0 <= layer < len(layers):
        raise KeyError(f"no block {layer}; valid layers: 0..{len(layers) - 1}")
    return layers[layer]


def apply_block(p, h, cfg):
    """T_l(H): the block with parameters ``p`` on a residual stream h [B, T, d] -> [B, T, d]."""
    return model.block(h, p, cfg, _no_hooks, _rope(h, cfg))


def apply_mlp(p, x, cfg):
    """eq. (3.1): the MLP output y for its (normalized) input x [..., d] -> [..., d]."""
    return model.mlp(x, p, cfg, _no_hooks)


def apply_norm(p, x, cfg):
    """The pre-MLP / pre-attention norm with parameters ``p``."""
    return model.norm(x, p, cfg)


def block_parts(p, h, cfg):
    """Every site inside one block on stream h, by suffix: {"hook_resid_mid": ..., "hook_mlp_out": ...}."""
    parts = {}
    def record(x, name):
        parts[name] = x
        return x
    model.block(h, p, cfg, record, _rope(h, cfg))
    return parts
