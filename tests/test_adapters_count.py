"""Parameter counts from the config alone: closed forms, allocated sizes, the paper's percentages."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from adapter_strategies import adapter_specs
from strategies import configs

from ministeer import adapters as A
from ministeer.model import Config, init_params
from ministeer.tree import tree_size

LLAMA_1B = Config.llama(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, d_mlp=8192,
                        n_ctx=8, tied=True)  # Llama-3.2-1B (n_ctx does not change the count with RoPE)


@given(configs())
def test_base_count_is_the_size_of_init_params(cfg):
    assert A.base_param_count(cfg) == tree_size(init_params(cfg))


@given(configs(), st.data())
def test_count_equals_the_size_of_the_initialized_adapter(cfg, data):
    kind, fields = data.draw(adapter_specs(cfg))
    spec = A.make_spec(cfg, kind, **fields)
    assert A.count_params(cfg, spec).trainable == tree_size(A.init_adapter(cfg, spec).params)


@given(configs(), st.sampled_from(sorted(A.METHODS)))
def test_method_count_equals_the_built_adapters(cfg, name):
    assume(name not in ("loreft", "loreft_all", "direft") or cfg.d_model >= 8)  # orthonormal rows need r = 8 <= d
    adapters = A.build_method(name, cfg, init_params(cfg))
    count = A.count_params(cfg, name)
    assert count.trainable == sum(tree_size(a.params) for a in adapters.values())
    assert count == A.count_params(cfg, adapters) and count.base == A.base_param_count(cfg)


@given(configs(), st.integers(1, 8))
def test_counts_equal_the_closed_forms(cfg, r):
    d, L, m, kv = cfg.d_model, cfg.n_layers, cfg.d_mlp, cfg.n_kv_heads * cfg.d_head
    count = lambda kind, **f: A.count_params(cfg, {"kind": kind, **f}).trainable
    assert count("lowrank", r=r) == 2 * r * d * L                                  # post-block: 2 r d L
    assert count("lowrank", r=r, sites="post_mlp", layers=[0]) == 2 * r * d
    assert count("lowrank", r=r, sites="blocks.*.mlp.hook_post") == 2 * r * m * L
    assert count("vector") == d * L
    assert count("loreft", r=min(r, d)) == (2 * min(r, d) * d + min(r, d)) * L    # R, W, b
    assert count("direft", r=min(r, d)) == (2 * min(r, d) * d + min(r, d)) * L    # R (orthonormal), W, b
    assert count("nodireft", r=r) == (2 * r * d + r) * L                          # R (free), W, b
    per_layer = r * ((d + d) + 2 * (d + kv) + (d + d) + (2 if cfg.mlp == "swiglu" else 1) * (d + m) + (m + d))
    assert count("lora", r=r) == per_layer * L                                     # r (in + out) per module
    assert A.count_params(cfg, "full").trainable == A.base_param_count(cfg)


def test_llama_3_2_1b_base_size():
    assert A.base_param_count(LLAMA_1B) == 1_235_814_400  # "1.24B", tied embeddings counted once


@pytest.mark.parametrize("method, exact, paper, digits", [
    ("postblock_silu", 0.04241, 0.042, 3),
    ("postblock_vector", 0.002652, 0.003, 3),
    ("postblock_r1", 0.005303, 0.005, 3),
    ("lora", 0.4540, 0.45, 2),
])
def test_the_papers_percentages_on_llama_3_2_1b(method, exact, paper, digits):
    """The paper's percentages (arXiv 2603.00425), rounded to ``digits`` decimals the ordinary way.
    They are PEFT's "trainable%": trainable / (base + adapter). Rejects the base-only share, which
    gives LoRA 0.4561% -> 0.46."""
    percent = A.count_params(LLAMA_1B, method).percent
    assert percent == pytest.approx(exact, rel=1e-3)
    assert round(percent, digits) == paper


def test_percent_is_peft_convention_and_the_base_only_share_stays_available():
    """LoRA r=8 on Llama-3.2-1B: 5,636,096 trainable; 100 n / (base + n) = 0.4540%, 100 n / base = 0.4561%.
    Full fine-tuning adds no parameters: 100% either way."""
    lora = A.count_params(LLAMA_1B, "lora")
    assert lora.trainable == 5_636_096
    assert lora.percent == pytest.approx(100 * 5_636_096 / (1_235_814_400 + 5_636_096), rel=1e-12)
    assert lora.percent_of_base == pytest.approx(100 * 5_636_096 / 1_235_814_400, rel=1e-12)
    assert round(lora.percent_of_base, 2) == 0.46 and round(lora.percent, 2) == 0.45
    full = A.count_params(LLAMA_1B, "full")
    assert full.percent == full.percent_of_base == 100.0


def test_count_needs_no_allocation():
    """A 70B-sized config counts instantly (nothing of that size could be allocated here)."""
    big = Config.llama(vocab_size=128256, d_model=8192, n_layers=80, n_heads=64, n_kv_heads=8, d_mlp=28672)
    assert A.count_params(big, "postblock_silu").trainable == 2 * 8 * 8192 * 80
    assert 6.9e10 < A.base_param_count(big) < 7.1e10
    assert str(A.count_params(LLAMA_1B, "postblock_silu")).startswith("524,288 trainable (0.0424%")
    assert np.isclose(A.count_params(big, "full").percent, 100.0)


def test_full_ft_with_an_adapter_on_top_trains_every_parameter():
    """PEFT's "trainable%" of full FT plus a post-block adapter: every parameter of the adapted model
    is trainable, so 100%, and the base-only share exceeds 100%. Rejects counting full FT's
    trainable base as *added* parameters (mutant ``count_full_as_added``: 50%)."""
    both = {"full": dict(kind="full"), "steer": dict(kind="lowrank", r=8)}
    count = A.count_params(LLAMA_1B, both)
    steer = 2 * 8 * 2048 * 16
    assert count.trainable == 1_235_814_400 + steer
    assert count.percent == 100.0
    assert count.percent_of_base == pytest.approx(100 * (1_235_814_400 + steer) / 1_235_814_400, rel=1e-12)


@pytest.mark.parametrize("method", ["joint_orth_input", "joint_orth_official"])
def test_a_method_of_several_adapters_adds_them_all_to_the_denominator(method):
    """Joint LoRA + post-block: trainable n = the sum of the
    adapters, and PEFT's share is 100 n / (base + n). Rejects a denominator with only the first
    adapter added (mutant ``count_first_adapter_only``)."""
    sizes = [A.count_params(LLAMA_1B, spec).trainable for spec in A.METHODS[method].adapters.values()]
    assert len(sizes) == 2 and min(sizes) > 0
    n = sum(sizes)
    count = A.count_params(LLAMA_1B, method)
    assert count.trainable == n
    assert count.percent == pytest.approx(100 * n / (1_235_814_400 + n), rel=1e-12)


@given(configs(), st.integers(1, 3))
def test_the_head_methods_counts_are_their_closed_forms(cfg, k):
    """LoFiT keeps K heads x d_head numbers (its bias vectors); JoLA has, per layer, A and v
    (2 H d_head) and two log-alphas per head (2 H). Rejects a LoFiT vector as wide as the
    residual stream (mutant ``lofit_v_d_model``)."""
    from ministeer.adapters.lofit import default_k
    k = min(k, cfg.n_layers * cfg.n_heads)
    assert A.count_params(cfg, "lofit").trainable == default_k(cfg) * cfg.d_head
    assert A.count_params(cfg, {"kind": "lofit", "k": k}).trainable == k * cfg.d_head
    assert A.count_params(cfg, "jola").trainable == cfg.n_layers * 2 * cfg.n_heads * (cfg.d_head + 1)
    assert A.count_params(cfg, {"kind": "jola", "layers": [0]}).trainable == 2 * cfg.n_heads * (cfg.d_head + 1)
