"""Adapters as data: exact no-op at init, the paper's formulas at a site, positions, composition, errors."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from adapter_strategies import adapter_specs, flat_sites, randomize
from strategies import configs, model_and_tokens, positions, random_params, seeds
from tolerances import EXACT

from ministeer import adapters as A
from ministeer.model import forward, init_params, run_with_cache
from ministeer.tree import tree_leaves


@given(model_and_tokens(), st.data())
def test_every_adapter_is_an_exact_noop_at_init(mt, data):
    cfg, params, tokens = mt
    kind, fields = data.draw(adapter_specs(cfg))
    adapter = A.init_adapter(cfg, A.make_spec(cfg, kind, **fields), seed=data.draw(seeds))
    base = forward(params, tokens, cfg)
    assert np.array_equal(A.adapted_forward(params, adapter, tokens, cfg), base)  # bitwise


@given(configs(dtype="float32"), seeds, st.data())
def test_noop_at_init_holds_in_float32_too(cfg, seed, data):
    """LoReFT's W = R is recomputed in the model's dtype, so (W - R) h is exactly 0 there too."""
    params = random_params(cfg, seed)
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, (2, 5))
    kind, fields = data.draw(adapter_specs(cfg))
    adapter = A.init_adapter(cfg, A.make_spec(cfg, kind, **fields), seed=seed)
    assert all(leaf.dtype == np.float32 for leaf in tree_leaves(adapter.params))
    assert np.array_equal(A.adapted_forward(params, adapter, tokens, cfg), forward(params, tokens, cfg))


@given(model_and_tokens(), st.sampled_from(sorted(A.METHODS)))
def test_every_method_is_an_exact_noop_at_init(mt, name):
    """Except JoLA, which follows its official N(0, 1e-3) init (its no-op with init_std=0 is checked
    in tests/test_adapters_lofit_jola.py). LoFiT before head selection has no site, so it is one."""
    cfg, params, tokens = mt
    assume(name != "jola")
    assume(name not in ("loreft", "loreft_all", "direft") or cfg.d_model >= 8)  # orthonormal rows need r = 8 <= d
    adapters = A.build_method(name, cfg, params)
    assert np.array_equal(A.adapted_forward(params, adapters, tokens, cfg), forward(params, tokens, cfg))


@given(model_and_tokens(), st.sampled_from(sorted(A.ACTIVATIONS)), seeds)
def test_lowrank_is_h_plus_alpha_U_phi_D_h(mt, activation, seed):
    """The post-block adapter (docs/05-parameterizations.md) at one site: the cached activation after the hook is h + alpha U phi(D h)."""
    cfg, params, tokens = mt
    site = np.random.default_rng(seed).choice(flat_sites(cfg))
    adapter = randomize(A.lowrank(cfg, sites=site, r=3, activation=activation, alpha=0.7), seed)
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter))
    h, p = before[site], adapter.params[site]
    phi = {"linear": lambda x: x, "silu": lambda x: x / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0),
           "tanh": np.tanh, "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))}
    expected = h + 0.7 * np.einsum("dr,btr->btd", p["U"], phi[activation](np.einsum("rd,btd->btr", p["D"], h)))
    np.testing.assert_allclose(after[site], expected, **EXACT)


@given(model_and_tokens(max_batch=3), st.data())
def test_position_mask_edits_exactly_the_chosen_positions(mt, data):
    cfg, params, tokens = mt
    B, T = tokens.shape
    pos = data.draw(positions(T))
    site = "blocks.0.hook_resid_post"
    adapter = randomize(A.steering_vector(cfg, sites=site, positions=pos), data.draw(seeds))
    _, before = run_with_cache(params, tokens, cfg, names=[site])
    _, after = run_with_cache(params, tokens, cfg, names=[site], hooks=A.adapter_hooks(adapter))
    chosen = np.zeros(T, bool)
    if pos is None:
        chosen[:] = True
    elif isinstance(pos, str):
        chosen[-1] = True
    else:
        chosen[np.asarray(pos)] = True  # a list of ints or a bool mask
    shift = after[site] - before[site]
    assert np.all(shift[:, ~chosen] == 0)
    np.testing.assert_allclose(shift[:, chosen], np.broadcast_to(adapter.params[site]["vector"],
                                                                 shift[:, chosen].shape), **EXACT)


def test_first_last_positions_count_from_the_prompt_when_given():
    """pyreft's "f2+l1" on prompts of lengths 4 and 2 in a sequence of 6."""
    mask = A.position_mask("f2+l1", 2, 6, prompt_lengths=np.array([4, 2]))
    np.testing.assert_array_equal(mask, [[1, 1, 0, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(A.position_mask("l2", 1, 5), [[0, 0, 0, 1, 1]])  # no prompt: the sequence
    np.testing.assert_array_equal(A.position_mask([0, -1], 1, 4), [[1, 0, 0, 1]])


@given(model_and_tokens(), seeds)
def test_adapters_compose_lora_plus_steering_in_one_call(mt, seed):
    """A set applies LoRA (effective weights) and hooks (in order) together; a list is named by kind."""
    cfg, params, tokens = mt
    lora = randomize(A.lora(cfg, r=2, targets=["q", "down"]), seed)
    v1 = randomize(A.steering_vector(cfg, sites="blocks.0.hook_mlp_out"), seed + 1)
    v2 = randomize(A.steering_vector(cfg, sites="blocks.0.hook_mlp_out"), seed + 2)
    both = A.adapted_forward(params, [lora, v1, v2], tokens, cfg)
    v12 = v1.with_params({s: {"vector": v1.params[s]["vector"] + v2.params[s]["vector"]} for s in v1.params})
    np.testing.assert_allclose(both, forward(A.merge_lora(params, lora), tokens, cfg,
                                             hooks=A.adapter_hooks(v12)), **EXACT)
    assert list(A.as_adapters([lora, v1, v2])) == ["lora", "vector", "vector_1"]


def test_bad_input_gives_clear_errors():
    from ministeer.model import Config
    cfg = Config.llama()
    with pytest.raises(KeyError, match="unknown site"):
        A.lowrank(cfg, sites="blocks.0.hook_nowhere")
    with pytest.raises(ValueError, match="activation"):
        A.lowrank(cfg, activation="softplus")
    with pytest.raises(ValueError, match="positions"):
        A.steering_vector(cfg, positions="middle")
    with pytest.raises(ValueError, match="layers"):
        A.lowrank(cfg, layers=[cfg.n_layers])
    with pytest.raises(ValueError, match="width"):
        A.lowrank(cfg, sites="blocks.0.attn.hook_q")
    with pytest.raises(TypeError, match="unknown field"):
        A.make_spec(cfg, "lowrank", rank=8)
    with pytest.raises(KeyError, match="valid kinds"):
        A.make_spec(cfg, "prefix")
    with pytest.raises(ValueError, match="out of range"):
        A.adapted_forward(init_params(cfg), A.steering_vector(cfg, positions=[5]), np.zeros((1, 3), int), cfg)
