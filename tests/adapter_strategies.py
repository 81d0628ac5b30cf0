"""Hypothesis strategies and helpers for the adapter tests (tests/test_adapters_*.py)."""
import numpy as np
from hypothesis import strategies as st

from ministeer import adapters as A
from ministeer.sites import site_shape
from ministeer.sites import site_names
from ministeer.tree import tree_map

ACTIVATION_KINDS = ("vector", "lowrank", "loreft", "direft", "nodireft")


def flat_sites(cfg):
    """Sites whose activation is [B, T, width]: where low-rank and ReFT adapters go."""
    return [n for n in site_names(cfg) if site_shape(cfg, n) is not None and len(site_shape(cfg, n)) == 1]


def positional_sites(cfg):
    """Sites with a position axis second: where a steering vector can go."""
    return [n for n in site_names(cfg) if site_shape(cfg, n) is not None]


def randomize(adapter, seed, scale=0.3):
    """The adapter with every array perturbed, so that it is no longer a no-op."""
    rng = np.random.default_rng(seed)
    return adapter.with_params(tree_map(lambda a: a + scale * rng.normal(size=a.shape).astype(a.dtype),
                                        adapter.params))


@st.composite
def adapter_specs(draw, cfg, kinds=("vector", "lowrank", "loreft", "direft", "nodireft", "lora")):
    """(kind, fields) for a random adapter on ``cfg``: random sites, rank, activation, positions."""
    kind = draw(st.sampled_from(kinds))
    if kind == "lora":
        targets = draw(st.lists(st.sampled_from(["q", "k", "v", "o", "up", "down"]
                                                + (["gate"] if cfg.mlp == "swiglu" else [])),
                                min_size=1, max_size=3, unique=True))
        layers = draw(st.none() | st.just([cfg.n_layers - 1]))
        return kind, dict(r=draw(st.integers(1, 4)), alpha=draw(st.sampled_from([1.0, 8.0])), targets=targets,
                          layers=layers, rslora=draw(st.booleans()))
    pool = positional_sites(cfg) if kind == "vector" else flat_sites(cfg)
    sites = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    positions = draw(st.none() | st.just("last") | st.just("f1+l1") | st.lists(st.integers(0, 0), min_size=1, max_size=1))
    fields = dict(sites=sites, positions=positions)
    if kind in ("lowrank", "loreft", "direft", "nodireft"):
        widths = [site_shape(cfg, s)[0] for s in sites]
        fields["r"] = draw(st.integers(1, min(widths) if kind in ("loreft", "direft") else 4))
    if kind == "lowrank":
        fields["activation"] = draw(st.sampled_from(sorted(A.ACTIVATIONS)))
    if kind in ("loreft", "direft", "nodireft") and positions == "f1+l1":
        fields["share_weights"] = draw(st.booleans())  # pyreft's default False: two interventions
    return kind, fields
