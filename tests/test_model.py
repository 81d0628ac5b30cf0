"""The model as a whole: residual identities, hooks, causality, gradients, GQA, errors, dtypes.

Identities that the forward pass computes literally (``resid_mid = resid_pre + attn_out``)
are checked bitwise with ``np.array_equal``; identities that hold in exact arithmetic but
are computed by different float operations use ``tolerances.EXACT``.
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from autograd.extend import defvjp, primitive
from autograd.test_util import check_grads
from hypothesis import assume, given, strategies as st

from ministeer.model import Config, forward, init_params, loss_fn, run_with_cache
from ministeer.sites import ALIASES, resolve, site_name, site_names
from ministeer.tree import named_leaves
from claim_helpers import flat_layernorm
from strategies import configs, model_and_tokens, random_params, seeds, sites_of
from tolerances import EXACT


def _tokens(cfg, seed, batch=2, length=None):
    rng = np.random.default_rng(seed)
    return rng.integers(0, cfg.vocab_size, (batch, length or cfg.n_ctx))

# ---------------------------------------------------------------- residual identities


@given(model_and_tokens())
def test_residual_stream_identities_are_bitwise(case):
    cfg, params, tokens = case
    _, cache = run_with_cache(params, tokens, cfg)
    for l in range(cfg.n_layers):
        b = f"blocks.{l}."
        assert np.array_equal(cache[b + "hook_resid_mid"], cache[b + "hook_resid_pre"] + cache[b + "hook_attn_out"])
        assert np.array_equal(cache[b + "hook_resid_post"], cache[b + "hook_resid_mid"] + cache[b + "hook_mlp_out"])
        if l + 1 < cfg.n_layers:
            assert np.array_equal(cache[b + "hook_resid_post"], cache[f"blocks.{l + 1}.hook_resid_pre"])
    stream_in = cache["hook_embed"] + cache["hook_pos_embed"] if cfg.pos == "learned" else cache["hook_embed"]
    assert np.array_equal(cache["blocks.0.hook_resid_pre"], stream_in)


@given(model_and_tokens())
def test_logits_are_the_unembedded_final_norm(case):
    cfg, params, tokens = case
    logits, cache = run_with_cache(params, tokens, cfg)
    unembed = params["model"]["embed_tokens"]["weight"] if cfg.tied else params["lm_head"]["weight"]
    h = cache["ln_final.hook_normalized"]
    np.testing.assert_allclose(logits, np.einsum("btd,vd->btv", h, unembed), **EXACT)


@given(model_and_tokens())
def test_batch_rows_are_independent_and_1d_tokens_are_one_sequence(case):
    cfg, params, tokens = case
    logits = forward(params, tokens, cfg)
    assert logits.shape == tokens.shape + (cfg.vocab_size,)
    for row in range(tokens.shape[0]):
        np.testing.assert_allclose(logits[row], forward(params, tokens[row], cfg)[0], **EXACT)

# ---------------------------------------------------------------- hooks


@given(model_and_tokens())
def test_identity_hooks_at_every_site_change_nothing(case):
    cfg, params, tokens = case
    seen = []
    def identity(x, name):
        seen.append(name)
        return x * 1.0  # a new array with the same bits
    hooked = forward(params, tokens, cfg, hooks={"*": identity})
    assert np.array_equal(hooked, forward(params, tokens, cfg))
    assert seen == site_names(cfg)  # every site, once, in forward order


@given(model_and_tokens(), st.data())
def test_a_hook_changes_only_its_site_and_what_follows(case, data):
    cfg, params, tokens = case
    target = data.draw(sites_of(cfg))
    rng = np.random.default_rng(data.draw(seeds))
    def perturb(x, name):
        return x + rng.normal(size=x.shape)
    clean_logits, clean = run_with_cache(params, tokens, cfg)
    logits, hooked = run_with_cache(params, tokens, cfg, hooks={target: perturb})
    order = site_names(cfg)
    for name in order[:order.index(target)]:  # forward order is a topological order
        assert np.array_equal(hooked[name], clean[name]), f"{name} changed by a hook on the later {target}"
    assert not np.array_equal(hooked[target], clean[target])  # the cache holds the hooked value
    # A per-query softmax over a single key is 1 whatever q and k are.
    if not (tokens.shape[1] == 1 and target.endswith(("attn.hook_q", "attn.hook_k"))):
        assert not np.array_equal(logits, clean_logits)


@given(model_and_tokens(presets=("llama",)))
def test_hooks_compose_in_order_and_patterns_match(case):
    cfg, params, tokens = case
    shift = np.linspace(-1.0, 1.0, cfg.d_model)
    hooks = {"blocks.*.hook_resid_post": [lambda x, n: x + shift, lambda x, n: 2.0 * x]}
    _, cache = run_with_cache(params, tokens, cfg, hooks=hooks)
    _, clean = run_with_cache(params, tokens, cfg)
    first = "blocks.0.hook_resid_post"
    np.testing.assert_array_equal(cache[first], 2.0 * (clean[first] + shift))


def test_site_name_and_aliases():
    cfg = Config.llama(n_layers=3)
    assert site_name("resid_post", 2) == "blocks.2.hook_resid_post"
    assert site_name("q", 0) == "blocks.0.attn.hook_q"
    assert site_name("pattern", 1) == "blocks.1.attn.hook_pattern"
    assert site_name("mlp_out", 0) == "blocks.0.hook_mlp_out"
    assert ALIASES == {"pre_mlp": "ln2.hook_normalized", "post_mlp": "hook_mlp_out",
                       "post_block": "hook_resid_post"}
    for alias, suffix in ALIASES.items():
        assert site_name(alias, 1) == f"blocks.1.{suffix}"
        assert resolve(cfg, alias) == [f"blocks.{l}.{suffix}" for l in range(3)]
        assert resolve(cfg, f"blocks.2.{alias}") == [f"blocks.2.{suffix}"]


@given(model_and_tokens())
def test_run_with_cache_caches_exactly_the_resolved_names(case):
    cfg, params, tokens = case
    logits, everything = run_with_cache(params, tokens, cfg)
    assert set(everything) == set(site_names(cfg))
    names = ["blocks.*.hook_resid_post", "pre_mlp", "blocks.0.attn.hook_pattern", "hook_embed"]
    expected = {f"blocks.{l}.{s}" for l in range(cfg.n_layers) for s in ("hook_resid_post", "ln2.hook_normalized")}
    expected |= {"blocks.0.attn.hook_pattern", "hook_embed"}
    logits2, cache = run_with_cache(params, tokens, cfg, names=names)
    assert set(cache) == expected
    assert np.array_equal(logits, logits2)
    for name in expected:
        assert np.array_equal(cache[name], everything[name])
    _, single = run_with_cache(params, tokens, cfg, names="post_block")
    assert set(single) == {f"blocks.{l}.hook_resid_post" for l in range(cfg.n_layers)}


def test_site_shapes_match_the_table():
    for cfg in (Config.llama(n_layers=1), Config.gpt2(n_layers=1)):
        B, T = 2, 5
        _, cache = run_with_cache(init_params(cfg), _tokens(cfg, 0, B, T), cfg)
        H, K, dh, d, m = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model, cfg.d_mlp
        from ministeer.sites import BLOCK_SITES, GLOBAL_SITES
        sizes = dict(B=B, T=T, H=H, K=K, dh=dh, d=d, m=m)
        table = {**GLOBAL_SITES, **{f"blocks.0.{s}": v for s, v in BLOCK_SITES.items()}}
        for name, value in cache.items():
            expected = tuple(sizes[s] for s in table[name][0].split())
            if name == "hook_pos_embed":  # shared by the batch
                expected = (1,) + expected[1:]
            assert value.shape == expected, name

# ---------------------------------------------------------------- causality


@given(model_and_tokens(), st.data())
def test_changing_a_token_never_changes_earlier_logits(case, data):
    cfg, params, tokens = case
    T = tokens.shape[1]
    t = data.draw(st.integers(0, T - 1))
    changed = tokens.copy()
    changed[:, t] = (tokens[:, t] + data.draw(st.integers(1, cfg.vocab_size - 1))) % cfg.vocab_size
    before, after = forward(params, tokens, cfg), forward(params, changed, cfg)
    assert np.array_equal(before[:, :t], after[:, :t])
    # the test can see a change (only just, at times: a LayerNorm over d_model=2 maps every
    # vector to +-(1, -1) up to eps, so different tokens may differ by ~1e-6 only)
    assert not np.array_equal(before[:, t], after[:, t])

# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
@given(data=st.data(), seed=seeds)
def test_loss_gradient_matches_central_differences(preset, data, seed):
    cfg = data.draw(configs(presets=(preset,)))
    # LayerNorm over 2 features has a kink-like curvature ((x - mean)/std jumps between
    # +-(1, -1)); central differences there are off by ~1e-5 on correct code (14.25780 vs 14.25825)
    assume(not flat_layernorm(cfg))
    params, tokens = random_params(cfg, seed % 2**31), _tokens(cfg, seed, 2, 6)
    mask = np.random.default_rng(seed).random(tokens.shape) < 0.7
    mask[:, -1] = True
    np.random.seed(seed % 2**31)  # check_grads draws its random directions from the global RNG
    check_grads(lambda p: loss_fn(p, tokens, cfg, mask=mask), modes=["rev"], order=1)(params)


@given(model_and_tokens(), st.data())
def test_gradient_through_a_steering_hook(case, data):
    cfg, params, tokens = case
    target = data.draw(st.sampled_from([n for n in site_names(cfg) if n.endswith(("resid_post", "mlp_out",
                                                                                   "ln2.hook_normalized"))]))
    def loss_with(vector):
        return loss_fn(params, tokens, cfg, targets=tokens, hooks={target: lambda x, n: x + vector})
    vector = np.random.default_rng(data.draw(seeds)).normal(size=cfg.d_model)
    np.random.seed(0)
    check_grads(loss_with, modes=["rev"], order=1)(vector)
    assert np.any(grad(loss_with)(vector) != 0.0)


@given(model_and_tokens())
def test_masked_loss_is_the_mean_cross_entropy_over_selected_positions(case):
    cfg, params, tokens = case
    rng = np.random.default_rng(int(tokens.sum()))
    targets = rng.integers(0, cfg.vocab_size, tokens.shape)
    mask = rng.random(tokens.shape) < 0.5
    mask.flat[0] = True
    logits = forward(params, tokens, cfg)
    logp = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    expected = -picked[mask].mean()
    np.testing.assert_allclose(loss_fn(params, tokens, cfg, targets=targets, mask=mask), expected, **EXACT)
    # default targets: next token, last position dropped
    shifted = loss_fn(params, tokens[:, :-1], cfg, targets=tokens[:, 1:]) if tokens.shape[1] > 1 else None
    if shifted is not None:
        np.testing.assert_allclose(loss_fn(params, tokens, cfg), shifted, **EXACT)

# ---------------------------------------------------------------- grouped-query attention


def _repeat_kv_heads(params, cfg):
    """The same model with one k/v head per query head (HF ``repeat_kv``: head h reads h // group)."""
    group, dh = cfg.n_heads // cfg.n_kv_heads, cfg.d_head
    def widen(w):  # [K*dh, d] -> [H*dh, d]
        return np.repeat(w.reshape(cfg.n_kv_heads, dh, -1), group, axis=0).reshape(cfg.n_heads * dh, -1)
    layers = [{**p, "self_attn": {**p["self_attn"],
                                  "k_proj": {"weight": widen(p["self_attn"]["k_proj"]["weight"])},
                                  "v_proj": {"weight": widen(p["self_attn"]["v_proj"]["weight"])}}}
              for p in params["model"]["layers"]]
    return {**params, "model": {**params["model"], "layers": layers}}


@given(model_and_tokens(presets=("llama",)))
def test_grouped_query_attention_equals_repeated_kv_heads(case):
    cfg, params, tokens = case
    assume(cfg.n_kv_heads < cfg.n_heads)
    full = cfg.replace(n_kv_heads=cfg.n_heads)
    np.testing.assert_allclose(forward(params, tokens, cfg), forward(_repeat_kv_heads(params, cfg), tokens, full),
                               **EXACT)


def test_grouped_query_attention_reads_kv_head_h_over_group():
    """Zeroing kv head 0 must change exactly query heads 0..group-1 (not every other head)."""
    cfg = Config.llama(n_heads=4, n_kv_heads=2, d_model=16, n_layers=1)
    params, tokens = random_params(cfg, 3), _tokens(cfg, 3, 1, 6)
    zero_kv0 = lambda v, n: v * np.array([0.0, 1.0])[None, None, :, None]
    _, clean = run_with_cache(params, tokens, cfg, names="blocks.0.attn.hook_z")
    _, hooked = run_with_cache(params, tokens, cfg, names="blocks.0.attn.hook_z",
                               hooks={"blocks.0.attn.hook_v": zero_kv0})
    changed = [not np.allclose(clean["blocks.0.attn.hook_z"][:, :, h], hooked["blocks.0.attn.hook_z"][:, :, h])
               for h in range(4)]
    assert changed == [True, True, False, False]

# ---------------------------------------------------------------- bad inputs


def test_bad_tokens_give_clear_errors():
    cfg = Config.llama()
    params = init_params(cfg)
    with pytest.raises(TypeError, match="integers"):
        forward(params, np.zeros((1, 3)), cfg)
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        forward(params, np.array([[1, 64]]), cfg)
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        forward(params, np.array([[-1, 2]]), cfg)
    with pytest.raises(ValueError, match=r"\[batch, pos\]"):
        forward(params, np.zeros((1, 2, 3), dtype=int), cfg)
    with pytest.raises(ValueError, match="n_ctx=64"):
        forward(params, np.zeros((1, 65), dtype=int), cfg)
    with pytest.raises(ValueError, match=r"\[batch, pos\]"):
        forward(params, np.zeros((1, 0), dtype=int), cfg)


def test_unknown_site_lists_the_closest_match_and_the_valid_ones():
    cfg = Config.llama()
    params, tokens = init_params(cfg), _tokens(cfg, 0, 1, 4)
    with pytest.raises(KeyError) as err:
        forward(params, tokens, cfg, hooks={"blocks.0.hook_resid_pots": lambda x, n: x})
    message = str(err.value)
    assert "Did you mean 'blocks.0.hook_resid_post'" in message
    assert all(name in message for name in site_names(cfg))
    with pytest.raises(KeyError, match="blocks.7"):
        run_with_cache(params, tokens, cfg, names="blocks.7.hook_resid_post")
    with pytest.raises(KeyError, match="hook_pos_embed"):  # llama has rotary, not learned positions
        resolve(cfg, "hook_pos_embed")


def test_hook_returning_the_wrong_shape_is_named():
    cfg = Config.gpt2()
    with pytest.raises(ValueError, match=r"blocks\.1\.hook_mlp_out.*expected \(1, 4, 32\)"):
        forward(init_params(cfg), _tokens(cfg, 0, 1, 4), cfg,
                hooks={"blocks.1.hook_mlp_out": lambda x, n: x[..., :-1]})


@pytest.mark.parametrize("overrides, message", [
    (dict(d_model=30, n_heads=4), "not divisible by n_heads"),
    (dict(n_heads=4, n_kv_heads=3), "not divisible by n_kv_heads"),
    (dict(norm="batch"), "Config.norm='batch'; expected one of"),
    (dict(mlp="relu"), "Config.mlp"),
    (dict(pos="alibi"), "Config.pos"),
    (dict(dtype="float16"), "Config.dtype"),
    (dict(n_layers=0), "positive int"),
    (dict(vocab_size=10.0), "positive int"),
    (dict(d_model=12, n_heads=4), "even head size"),
    (dict(norm_eps=0.0), "norm_eps must be a finite number > 0"),
    (dict(norm_eps=-1e-5), "norm_eps"), (dict(norm_eps=float("nan")), "norm_eps"),
    (dict(rope_theta=0), "rope_theta must be a finite number > 0"), (dict(rope_theta=float("inf")), "rope_theta"),
    (dict(vocab_size=True), "vocab_size must be a positive int, got True"),
    (dict(bias="no"), "bias must be True or False"), (dict(tied=1), "tied must be True or False"),
    (dict(norm=["rms"]), "Config.norm"),
])
def test_invalid_configs_are_rejected(overrides, message):
    """The last rows reject the old checks, which let eps <= 0 or NaN, theta = 0 and
    ``vocab_size=True`` through to NaN logits or a 1-token vocabulary."""
    with pytest.raises(ValueError, match=message):
        Config.llama(**overrides)


def test_numpy_scalars_in_a_config_become_python_values(tmp_path):
    """Rejects keeping np.int64 / np.bool_ fields: the config is stored as JSON, which refuses them."""
    from ministeer.io import load_model, save_model
    cfg = Config.llama(n_layers=np.int64(1), vocab_size=np.int32(10), tied=np.bool_(True), norm_eps=np.float32(1e-5))
    assert type(cfg.n_layers) is int and type(cfg.tied) is bool and type(cfg.norm_eps) is float
    save_model(tmp_path / "m.safetensors", init_params(cfg), cfg)
    assert load_model(tmp_path / "m.safetensors")[1] == cfg


def test_params_that_do_not_fit_the_config_are_named_in_forward():
    """Rejects a forward pass that trusts the tree: 1-layer params under a 2-layer config ran and
    returned logits, and vocab-128 params gave 128-wide logits."""
    cfg = Config.llama(n_layers=2)
    tokens = _tokens(cfg, 0, 1, 4)
    with pytest.raises(ValueError, match=r"missing 'model.layers.1.input_layernorm.weight'"):
        forward(init_params(cfg.replace(n_layers=1)), tokens, cfg)
    with pytest.raises(ValueError, match=r"'model.embed_tokens.weight' has shape \[128, 32\], the config needs \[64, 32\]"):
        forward(init_params(cfg.replace(vocab_size=128)), tokens, cfg)
    with pytest.raises(ValueError, match=r"unexpected tensors \['model.layers.2"):
        loss_fn(init_params(cfg.replace(n_layers=3)), tokens, cfg)
    gpt2 = Config.gpt2()
    with pytest.raises(ValueError, match="missing 'model.embed_positions.weight'"):
        forward(init_params(cfg), tokens, gpt2)


def test_the_params_check_costs_little():
    """The structural check runs in every forward: it must not slow a training step measurably
    (a walk of ~30 leaves: measured ~20 us against ~28 ms for this step's value and gradient; the
    batch is large enough that the fused block's speed-up leaves the margin wide)."""
    import time
    from autograd import value_and_grad
    from ministeer.model import check_params
    cfg = Config.llama()
    params, tokens = init_params(cfg), _tokens(cfg, 0, 8, 64)
    step = value_and_grad(lambda p: loss_fn(p, tokens, cfg))
    timed = lambda fn: min((lambda t: (fn(), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(10))
    assert timed(lambda: check_params(params, cfg)) < 0.01 * timed(lambda: step(params))


@pytest.mark.parametrize("kwargs, message", [
    (dict(targets=np.full((1, 4), 99)), r"targets must lie in \[0, 64\), got min 99, max 99"),
    (dict(targets=np.array([[1, 2, -1, 3]])), r"targets must lie in \[0, 64\), got min -1"),
    (dict(targets=np.ones((1, 4))), "targets must be integers"),
    (dict(targets=np.ones((1, 3), int)), r"targets has shape \(1, 3\), expected \(1, 4\)"),
    (dict(mask=np.ones((1, 2))), r"mask has shape \(1, 2\), expected \(1, 4\)"),
    (dict(mask=np.zeros((1, 4))), "mask selects no position"),
    (dict(mask=np.array([[1, 0, 0, 0]])), "mask selects no position"),  # only the dropped first position
    (dict(mask=np.array([[1.0, -1.0, 1.0, 1.0]])), "mask values must be finite and >= 0"),
    (dict(mask=np.array([[1.0, np.nan, 1.0, 1.0]])), "mask values must be finite"),
    (dict(mask=np.array([["a", "b", "c", "d"]])), "mask must be bool or numeric"),
])
def test_loss_fn_refuses_targets_and_masks_that_would_give_a_wrong_number(kwargs, message):
    """Rejects the old loss_fn: targets of 99 gave loss 0.0, negative ones dropped out, and a
    [1, 2] mask with T=4 broadcast into a sum (12.30 where the mean is 4.10)."""
    cfg = Config.llama()
    with pytest.raises((ValueError, TypeError), match=message):
        loss_fn(init_params(cfg), np.array([[1, 2, 3, 4]]), cfg, **kwargs)


def test_a_list_mask_is_the_same_as_an_array_mask():
    """Rejects a list mask failing deep inside (``mask[:, 1:]`` on a list)."""
    cfg = Config.llama()
    params, tokens = init_params(cfg), np.array([[1, 2, 3, 4]])
    assert float(loss_fn(params, tokens, cfg, mask=[[0, 1, 1, 1]])) == \
        float(loss_fn(params, tokens, cfg, mask=np.array([[0, 1, 1, 1]])))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        loss_fn(params, np.array([[5]]), cfg)

# ---------------------------------------------------------------- float32 stays float32


_cotangent_dtypes = []


@primitive
def _audit(x):
    return x


defvjp(_audit, lambda ans, x: lambda g: (_cotangent_dtypes.append(g.dtype), g)[1])


@given(model_and_tokens())
def test_float32_forward_and_backward_stay_float32(case):
    cfg64, params64, tokens = case
    cfg = cfg64.replace(dtype="float32")
    params = random_params(cfg, int(tokens.sum()))
    assert all(leaf.dtype == np.float32 for _, leaf in named_leaves(params))
    logits, cache = run_with_cache(params, tokens, cfg)
    assert logits.dtype == np.float32
    assert {v.dtype for v in cache.values()} == {np.dtype(np.float32)}
    _cotangent_dtypes.clear()
    hooks = {"*": lambda x, n: _audit(x)}
    loss, grads = loss_fn(params, tokens, cfg, targets=tokens, hooks=hooks), \
        grad(loss_fn)(params, tokens, cfg, targets=tokens, hooks=hooks)
    assert np.asarray(loss).dtype == np.float32
    # every site's incoming cotangent was seen, and none was promoted to float64
    assert len(_cotangent_dtypes) == len(site_names(cfg))
    assert set(_cotangent_dtypes) == {np.dtype(np.float32)}
    for name, g in named_leaves(grads):
        assert g.dtype == np.float32, f"gradient of {name} is {g.dtype}"


def test_steering_vector_gradient_stays_float32():
    cfg = Config.llama(dtype="float32")
    params, tokens = init_params(cfg), _tokens(cfg, 0, 2, 8)
    vector = np.zeros(cfg.d_model, dtype=np.float32)
    g = grad(lambda v: loss_fn(params, tokens, cfg, hooks={"post_block": lambda x, n: x + v}))(vector)
    assert g.dtype == np.float32 and anp.any(g != 0)
