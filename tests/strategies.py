"""Hypothesis strategies shared by every test: tiny configs, params, sites, positions.

Random arrays are drawn from a seed (``np.random.default_rng(seed)``), which is fast
and shrinks well; hypothesis explores the seed and the shapes.
"""
import numpy as np
from hypothesis import strategies as st

from ministeer.model import Config, init_params
from ministeer.sites import site_names

seeds = st.integers(0, 2**32 - 1)


@st.composite
def configs(draw, presets=("llama", "gpt2"), dtype="float64", max_layers=2):
    """A tiny Config of either preset: 1-2 layers, d_model 4-16, 1-4 heads (GQA for llama)."""
    preset = draw(st.sampled_from(presets))
    n_heads = draw(st.sampled_from([1, 2, 4]))
    d_head = draw(st.sampled_from([2, 4]))
    common = dict(vocab_size=draw(st.integers(5, 23)), d_model=n_heads * d_head, n_heads=n_heads,
                  n_layers=draw(st.integers(1, max_layers)), n_ctx=8, dtype=dtype,
                  d_mlp=draw(st.sampled_from([4, 8, 12])))
    if preset == "llama":
        kv = draw(st.sampled_from([k for k in (1, 2, 4) if n_heads % k == 0]))
        return Config.llama(n_kv_heads=kv, **common)
    return Config.gpt2(**common)


def random_params(cfg, seed, std=0.3):
    """Params with O(1) activations (std 0.3, not the 0.02 of training init), so that
    every nonlinearity is exercised away from its linear regime."""
    params = init_params(cfg, seed, std=std)
    rng = np.random.default_rng(seed + 1)
    from ministeer.tree import tree_map
    # norms and biases are not 1 and 0 either: perturb every leaf
    return tree_map(lambda a: a + std * rng.normal(size=a.shape).astype(a.dtype), params)


@st.composite
def model_and_tokens(draw, presets=("llama", "gpt2"), max_batch=2):
    """(cfg, params, tokens [B, T])."""
    cfg = draw(configs(presets))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, cfg.vocab_size, (draw(st.integers(1, max_batch)), draw(st.integers(1, cfg.n_ctx))))
    return cfg, random_params(cfg, seed), tokens


def sites_of(cfg):
    """A strategy over the concrete site names of ``cfg``."""
    return st.sampled_from(site_names(cfg))


def positions(n_pos):
    """A positions spec for a sequence of ``n_pos`` tokens: None (all), "last", a list, or a mask."""
    return st.one_of(
        st.none(), st.just("last"),
        st.lists(st.integers(0, n_pos - 1), min_size=1, max_size=n_pos, unique=True),
        st.lists(st.booleans(), min_size=n_pos, max_size=n_pos).map(np.array))
