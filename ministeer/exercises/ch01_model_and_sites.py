"""Checkers for docs/01-model-and-sites.md: the residual identities and a position hook."""
import autograd
import numpy as np  # host side: test inputs and comparisons

from ..backend import from_numpy
from ..model import forward, run_with_cache
from .common import call, expect_close, fail, host, passed, tiny_model


def check_resid_post(resid_post):
    """Exercise 1.1: ``resid_post(cache, layer)`` rebuilds ``blocks.{layer}.hook_resid_post``.

    The student's function gets a cache *without* the block output (and without the
    next block's input, which equals it), so it must add the pieces up: eq. (1.2)-(1.3).
    """
    for preset in ("llama", "gpt2"):
        cfg, params, tokens = tiny_model(preset, seed=1)
        _, cache = run_with_cache(params, tokens, cfg)
        for layer in range(cfg.n_layers):
            hidden = {f"blocks.{layer}.hook_resid_post", f"blocks.{layer + 1}.hook_resid_pre"}
            visible = {k: v for k, v in cache.items() if k not in hidden}
            got = call("1.1", resid_post, visible, layer)
            c = lambda s: cache[f"blocks.{layer}.{s}"]
            expect_close("1.1", got, c("hook_resid_post"), what=f"resid_post at layer {layer} ({preset})",
                         atol=1e-12, rtol=1e-12, diagnoses=[
                (c("hook_attn_out") + c("hook_mlp_out"),
                 "you dropped the skip connection: the block output keeps its input, "
                 "resid_post = resid_pre + attn_out + mlp_out."),
                (c("hook_resid_pre") + c("hook_mlp_out"),
                 "the attention output is missing: resid_mid = resid_pre + attn_out comes first."),
                (c("hook_resid_pre") + c("hook_attn_out"), "the MLP output (hook_mlp_out) is missing."),
                (c("hook_resid_mid") + c("hook_attn_out") + c("hook_mlp_out"),
                 "attention is counted twice: hook_resid_mid already contains hook_attn_out."),
                (c("hook_resid_mid") + c("ln2.hook_normalized"),
                 "the MLP's *input* (ln2.hook_normalized) is not what gets added; its output "
                 "hook_mlp_out is."),
            ])
    return passed("1.1", "resid_post from its parts", "resid_post = resid_pre + attn_out + mlp_out, exactly.")


def check_add_at_position(add_at_position):
    """Exercise 1.2: ``add_at_position(vector, position)`` returns a hook adding ``vector`` at one position.

    Checked: the value at the site (one position changed, by +vector, in every batch row),
    a negative position (-1 = last), no in-place edit of the incoming activation, and that
    ``autograd`` can differentiate through the hook (no item assignment).
    """
    cfg, params, tokens = tiny_model("llama", seed=2, batch=2, n_pos=6)
    site = "blocks.0.hook_resid_post"
    _, base = run_with_cache(params, tokens, cfg, names=[site])
    base = host(base[site])
    vector = from_numpy(np.linspace(-1.0, 1.0, cfg.d_model))
    T = tokens.shape[1]
    for position in (2, 0, -1):
        hook = call("1.2", add_at_position, vector, position)
        if not callable(hook):
            fail("1.2", f"add_at_position must return a hook function (act, name) -> new act, got {type(hook).__name__}")
        seen = {}
        def spy(act, name):
            seen["before"] = host(act).copy()
            seen["act"] = act
            return act
        _, cache = run_with_cache(params, tokens, cfg, names=[site], hooks={site: [spy, hook]})
        if not np.array_equal(host(seen["act"]), seen["before"]):
            fail("1.2", "your hook changed the incoming activation in place. Return a new array "
                        "(act + shift); in-place edits break autograd and corrupt caches.")
        p = position % T
        want = base.copy()
        want[:, p] += host(vector)
        def shifted(q):
            out = base.copy()
            out[:, q % T] += host(vector)
            return out
        everywhere = base + host(vector)
        expect_close("1.2", cache[site], want, what=f"the activation after your hook (position={position})",
                     atol=1e-12, diagnoses=[
            (shifted(p + 1), "off by one: you shifted position+1. Positions are 0-based indices into T."),
            (shifted(p - 1), "off by one: you shifted position-1. Positions are 0-based indices into T."),
            (everywhere, "you added the vector at every position; build a [T] mask that is 1 only at "
                         "`position`."),
            (base - (want - base), "sign error: the hook should add the vector, not subtract it."),
            (base, "your hook returned the activation unchanged."),
        ])
    # differentiable through the forward pass (the way fit() will use it)
    def total(v):
        return forward(params, tokens, cfg, hooks={site: call("1.2", add_at_position, v, 1)}).sum()
    try:
        g = autograd.grad(total)(vector)
    except Exception as err:  # item assignment on a traced array, in-place ops, ...
        fail("1.2", f"autograd could not differentiate through your hook ({type(err).__name__}: {err}). "
                    "Avoid item assignment and +=; multiply by a mask instead.")
    if not np.all(np.isfinite(host(g))) or not np.any(host(g)):
        fail("1.2", "the gradient with respect to the vector is zero or not finite: the vector "
                    "must enter the returned activation.")
    return passed("1.2", "a hook that adds a vector at one position",
                  "Only that position changed, and autograd differentiates through it.")
