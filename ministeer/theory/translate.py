"""Translate a weight update (a trained LoRA, a fine-tune) into per-layer post-block shifts.

docs/02-weight-updates-as-shifts.md, section "From a weight update to a steer". The
oracle of eq. (4.5) needs the fine-tuned blocks. Its first-order version needs only
the update: at layer l, on the *steered* stream H~ entering the block,

    delta_l(H~) = eps * D_theta T_l(H~)[dtheta_l]                                (2.10)

(one forward-mode JVP of the block, dtheta_l = the update restricted to block l). The
steered base model then matches the fine-tuned one up to O(eps^2), so

    recovery(eps) = 1 - ||z_tr - z_FT|| / ||z_base - z_FT||  ->  1   as eps -> 0  (2.11)

(z = logits; ||z_base - z_FT|| = O(eps), ||z_tr - z_FT|| = O(eps^2)). Updates to the
embedding, final norm or unembedding live outside every block and are not translated;
``translation_report`` lists them.
Checked in tests/test_claim_15_block_first_order.py and tests/test_translate.py.
"""
from ..backend import raw
from ..model import forward
from .first_order import block_first_order_shift, named_update, perturb
from .oracle import stream_hooks


def lora_update(adapter):
    """A LoRA adapter (ministeer.adapters) as a named update {"<module>.weight": s B A}, eq. (2.2)."""
    from ..adapters import delta_weight
    return {f"{module}.weight": delta_weight(adapter.spec, p) for module, p in adapter.params.items()}


def translated_hooks(params, delta, cfg, eps=1.0, layers=None):
    """eq. (2.10) as hooks on the base model: add eps * D_theta T_l(H~)[dtheta_l] at each post-block site."""
    delta = named_update(params, delta)
    def shift(layer, h):
        return eps * block_first_order_shift(params, delta, h, cfg, layer)[1]
    return stream_hooks(shift, cfg, layers)


def untranslated(delta):
    """Names of updated parameters outside every block (no post-block shift can carry them exactly)."""
    return sorted(n for n in delta if not n.startswith("model.layers."))


def translation_report(params, delta, tokens, cfg, epsilons=(1.0,), targets=None):
    """eq. (2.11) for each eps: logit errors of the translated steer vs the base and fine-tuned models.

    Returns a list of dicts {eps, base_gap, error_vs_ft, error_vs_base, recovery, agreement}
    where agreement is the fraction of positions whose argmax token matches the fine-tuned
    model's (and, with ``targets``, also ``accuracy_{base,ft,translated}``).
    """
    delta = named_update(params, delta)
    base = forward(params, tokens, cfg)
    rows = []
    for eps in epsilons:
        ft = forward(perturb(params, delta, eps), tokens, cfg)
        tr = forward(params, tokens, cfg, hooks=translated_hooks(params, delta, cfg, eps))
        norm = lambda a: float(raw.linalg.norm(a))
        row = dict(eps=float(eps), base_gap=norm(base - ft), error_vs_ft=norm(tr - ft),
                   error_vs_base=norm(tr - base),
                   agreement=float(raw.mean(raw.argmax(tr, -1) == raw.argmax(ft, -1))))
        row["recovery"] = 1.0 - row["error_vs_ft"] / max(row["base_gap"], 1e-300)
        if targets is not None:
            for key, z in (("base", base), ("ft", ft), ("translated", tr)):
                row[f"accuracy_{key}"] = float(raw.mean(raw.argmax(z, -1) == raw.asarray(targets)))
        rows.append(row)
    return rows
