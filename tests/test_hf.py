"""Hugging Face folders: ``load_pretrained`` and ``save_pretrained`` for Llama and GPT-2.

The folders here are written by hand from the published tensor names (not by
``save_pretrained``), so the loader is checked against the format, not against itself.
When ``transformers`` is installed, tiny random HF models are compared logit for logit.
"""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ministeer.io.hf import load_pretrained, save_pretrained
from ministeer.io import CheckpointError, save_arrays
from ministeer.model import Config, forward, init_params
from ministeer.tree import flatten, named_leaves
from hf_float64 import float64_everywhere
from strategies import configs, random_params, seeds
from test_io import files_in, same_tree
from tolerances import EXACT

# ---------------------------------------------------------------- Hugging Face folders, written by hand


def _hf_llama(params, cfg):
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": cfg.vocab_size,
              "hidden_size": cfg.d_model, "intermediate_size": cfg.d_mlp, "num_hidden_layers": cfg.n_layers,
              "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
              "max_position_embeddings": cfg.n_ctx, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
              "tie_word_embeddings": cfg.tied, "hidden_act": "silu"}
    return config, {name: np.asarray(a) for name, a in flatten(params).items()}  # HF names, 1:1


def _hf_gpt2(params, cfg):
    """GPT-2's layout: fused q/k/v, Conv1D weights stored [in, out]."""
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
              "n_embd": cfg.d_model, "n_layer": cfg.n_layers, "n_head": cfg.n_heads, "n_inner": cfg.d_mlp,
              "n_positions": cfg.n_ctx, "layer_norm_epsilon": cfg.norm_eps, "activation_function": "gelu_new"}
    m = params["model"]
    t = {"transformer.wte.weight": m["embed_tokens"]["weight"], "transformer.wpe.weight": m["embed_positions"]["weight"],
         "transformer.ln_f.weight": m["norm"]["weight"], "transformer.ln_f.bias": m["norm"]["bias"]}
    for l, layer in enumerate(m["layers"]):
        h, a, mlp = f"transformer.h.{l}.", layer["self_attn"], layer["mlp"]
        t[h + "ln_1.weight"], t[h + "ln_1.bias"] = layer["input_layernorm"]["weight"], layer["input_layernorm"]["bias"]
        t[h + "ln_2.weight"] = layer["post_attention_layernorm"]["weight"]
        t[h + "ln_2.bias"] = layer["post_attention_layernorm"]["bias"]
        t[h + "attn.c_attn.weight"] = np.hstack([a["q_proj"]["weight"].T, a["k_proj"]["weight"].T,
                                                 a["v_proj"]["weight"].T])
        t[h + "attn.c_attn.bias"] = np.hstack([a["q_proj"]["bias"], a["k_proj"]["bias"], a["v_proj"]["bias"]])
        t[h + "attn.c_proj.weight"], t[h + "attn.c_proj.bias"] = a["o_proj"]["weight"].T, a["o_proj"]["bias"]
        t[h + "mlp.c_fc.weight"], t[h + "mlp.c_fc.bias"] = mlp["up_proj"]["weight"].T, mlp["up_proj"]["bias"]
        t[h + "mlp.c_proj.weight"], t[h + "mlp.c_proj.bias"] = mlp["down_proj"]["weight"].T, mlp["down_proj"]["bias"]
    if not cfg.tied:
        t["lm_head.weight"] = params["lm_head"]["weight"]
    return config, t


def _write_hf(folder, config, tensors, shards=1):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    names = sorted(tensors)
    if shards == 1:
        save_arrays(folder / "model.safetensors", tensors)
        return folder
    weight_map = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = names[i::shards]
        save_arrays(folder / file, {n: tensors[n] for n in part})
        weight_map.update({n: file for n in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def _check_loads_back(folder, params, cfg):
    loaded, loaded_cfg = load_pretrained(folder)
    assert loaded_cfg == cfg
    assert same_tree(loaded, params)
    tokens = np.arange(min(cfg.n_ctx, 6)) % cfg.vocab_size
    np.testing.assert_allclose(forward(loaded, tokens, loaded_cfg), forward(params, tokens, cfg), **EXACT)


@given(cfg=configs(), seed=seeds, shards=st.integers(1, 3), data=st.data())
def test_load_pretrained_reads_hand_written_hf_folders(cfg, seed, shards, data):
    if cfg.norm == "rms":
        cfg = cfg.replace(tied=data.draw(st.booleans()))
    params = random_params(cfg, seed)
    config, tensors = (_hf_llama if cfg.norm == "rms" else _hf_gpt2)(params, cfg)
    with tempfile.TemporaryDirectory() as folder:
        _check_loads_back(_write_hf(folder, config, tensors, shards), params, cfg)


@given(cfg=configs(), seed=seeds)
def test_save_pretrained_then_load_pretrained_is_bitwise(cfg, seed):
    params = random_params(cfg, seed)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(folder, params, cfg)
        assert files_in(folder) == ["config.json", "model.safetensors"]
        _check_loads_back(folder, params, cfg)


def test_original_gpt2_names_and_buffers_are_accepted(tmp_path):
    """The OpenAI upload has no 'transformer.' prefix and stores the causal mask as h.N.attn.bias."""
    cfg = Config.gpt2(n_layers=2, d_model=8, n_heads=2, n_ctx=6)
    params = random_params(cfg, 0)
    config, tensors = _hf_gpt2(params, cfg)
    tensors = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    tensors.update({f"h.{l}.attn.bias": np.tril(np.ones((1, 1, 6, 6))) for l in range(2)})
    _check_loads_back(_write_hf(tmp_path, config, tensors), params, cfg)


def test_tied_llama_without_lm_head_and_without_the_flag(tmp_path):
    cfg = Config.llama(n_layers=1, tied=True)
    params = random_params(cfg, 0)
    config, tensors = _hf_llama(params, cfg)
    del config["tie_word_embeddings"]
    _check_loads_back(_write_hf(tmp_path, config, tensors), params, cfg)


def test_bfloat16_checkpoints_load_into_the_requested_dtype(tmp_path):
    cfg = Config.llama(n_layers=1, dtype="float32")
    params = init_params(cfg, 0)
    config, tensors = _hf_llama(params, cfg)
    _write_hf(tmp_path, config, tensors)
    loaded32, cfg32 = load_pretrained(tmp_path, dtype="float32")
    assert cfg32.dtype == "float32" and same_tree(loaded32, params)
    loaded64, _ = load_pretrained(tmp_path)
    assert all(a.dtype == np.float64 for _, a in named_leaves(loaded64))


def _hf_error(tmp_path, message, config_change=None, tensors_change=None, cfg=None):
    cfg = cfg or Config.gpt2(n_layers=1, d_model=8, n_heads=2)
    config, tensors = (_hf_llama if cfg.norm == "rms" else _hf_gpt2)(init_params(cfg, 0), cfg)
    if config_change:
        config_change(config)
    if tensors_change:
        tensors_change(tensors)
    _write_hf(tmp_path, config, tensors)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(tmp_path)


def test_hf_mismatched_tensors_are_named_by_their_hf_names(tmp_path):
    _hf_error(tmp_path / "a", r"missing tensors: \['transformer.h.0.mlp.c_fc.bias'\]",
              tensors_change=lambda t: t.pop("transformer.h.0.mlp.c_fc.bias"))
    _hf_error(tmp_path / "b", r"unexpected tensors: \['transformer.h.0.attn.q_proj.weight'\]",
              tensors_change=lambda t: t.update({"transformer.h.0.attn.q_proj.weight": np.zeros((8, 8))}))
    _hf_error(tmp_path / "c", r"transformer.h.0.attn.c_attn.weight: \[24, 8\] in file, expected \[8, 24\]",
              tensors_change=lambda t: t.update({"transformer.h.0.attn.c_attn.weight": np.zeros((24, 8))}))
    _hf_error(tmp_path / "d", r"model.layers.0.self_attn.k_proj.weight: \[32, 32\] in file, expected \[16, 32\]",
              cfg=Config.llama(n_layers=1),
              config_change=lambda c: c.update(num_key_value_heads=2),
              tensors_change=lambda t: t.update({"model.layers.0.self_attn.k_proj.weight": np.zeros((32, 32))}))


def test_hf_unsupported_models_are_refused_clearly(tmp_path):
    _hf_error(tmp_path / "a", r"architecture 'MistralForCausalLM' is not supported.*LlamaForCausalLM, GPT2LMHeadModel",
              config_change=lambda c: c.update(architectures=["MistralForCausalLM"]))
    _hf_error(tmp_path / "b", "activation_function='relu'",
              config_change=lambda c: c.update(activation_function="relu"))
    _hf_error(tmp_path / "c", "rope scaling", cfg=Config.llama(n_layers=1),
              config_change=lambda c: c.update(rope_scaling={"rope_type": "llama3", "factor": 8.0}))
    _hf_error(tmp_path / "d", "config.json has no 'n_embd'", config_change=lambda c: c.pop("n_embd"))
    _hf_error(tmp_path / "e", "invalid model: d_model=8 is not divisible by n_heads=3",
              config_change=lambda c: c.update(n_head=3))


def test_hf_missing_and_corruptfiles_in(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"],')
    with pytest.raises(CheckpointError, match="config.json' is not valid JSON"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"architectures": ["GPT2LMHeadModel"]}')
    with pytest.raises(CheckpointError, match="no model.safetensors or model.safetensors.index.json"):
        load_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickle checkpoints are refused"):
        load_pretrained(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": "model-1.safetensors"}}')
    with pytest.raises(CheckpointError, match="missing checkpoint file .*model-1.safetensors"):
        load_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(CheckpointError, match="too short"):
        load_pretrained(tmp_path)


def test_save_pretrained_refuses_configs_without_an_hf_architecture(tmp_path):
    cfg = Config.llama(n_layers=1, mlp="gelu")
    with pytest.raises(ValueError, match="no Hugging Face architecture matches"):
        save_pretrained(tmp_path, init_params(cfg), cfg)
    assert files_in(tmp_path) == []

# ---------------------------------------------------------------- against transformers itself


@pytest.mark.slow  # importing transformers and torch takes ~10 s
@pytest.mark.parametrize("arch, tied", [("llama", False), ("llama", True), ("gpt2", True)])
def test_logits_match_transformers(tmp_path, arch, tied):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    if arch == "llama":  # grouped-query attention, a non-default rope_theta
        hf_cfg = transformers.LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                                          rms_norm_eps=1e-5, rope_theta=500.0, tie_word_embeddings=tied)
        model = transformers.LlamaForCausalLM(hf_cfg)
    else:
        hf_cfg = transformers.GPT2Config(vocab_size=40, n_embd=32, n_layer=2, n_head=4, n_positions=16,
                                         bos_token_id=0, eos_token_id=0)
        model = transformers.GPT2LMHeadModel(hf_cfg)
    with torch.no_grad():  # HF initializes norms to 1 and biases to 0: perturb them all
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model = model.double().eval()
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    params, cfg = load_pretrained(tmp_path / "hf")
    assert cfg.tied == tied and (arch != "llama" or cfg.n_kv_heads == 2)
    tokens = np.random.default_rng(0).integers(0, 40, (2, 12))
    with torch.no_grad():
        expected = float64_everywhere(model)(torch.tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(forward(params, tokens, cfg), expected, rtol=0, atol=1e-10)
    # and the other way: a folder we write is read by transformers
    save_pretrained(tmp_path / "ours", params, cfg)
    auto = getattr(transformers, "LlamaForCausalLM" if arch == "llama" else "GPT2LMHeadModel")
    reread = auto.from_pretrained(tmp_path / "ours", dtype=torch.float64).eval()
    with torch.no_grad():
        again = float64_everywhere(reread)(torch.tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(again, expected, rtol=0, atol=1e-10)

# ---------------------------------------------------------------- reliability: one save, one folder


def test_a_crash_between_the_two_renames_is_detected_not_loaded(tmp_path, monkeypatch):
    """Rejects per-file atomicity alone: killed between the weights' rename and config.json's,
    a re-save used to leave new weights beside the old config, and load_pretrained loaded the
    mixture. The config written last records the weights' digest."""
    import ministeer.io.hf
    cfg = Config.llama(n_layers=1)
    old, new = init_params(cfg, 0), init_params(cfg, 1)
    save_pretrained(tmp_path, old, cfg)
    real = ministeer.io.hf.atomic_write
    def killed_before_config(path, write):
        if Path(path).name == "config.json":
            raise KeyboardInterrupt("killed between the two renames")
        real(path, write)
    monkeypatch.setattr(ministeer.io.hf, "atomic_write", killed_before_config)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(tmp_path, new, cfg.replace(rope_theta=500.0))
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="interrupted save_pretrained"):
        load_pretrained(tmp_path)
    save_pretrained(tmp_path, new, cfg)  # the next save repairs the folder
    assert same_tree(load_pretrained(tmp_path)[0], new)


def test_a_changed_config_of_a_saved_folder_is_detected(tmp_path):
    """Rejects loading a config.json whose numbers changed after the save (a header flip used to
    change rope_theta or norm_eps silently). Plain HF folders carry no digest and load as before."""
    cfg = Config.llama(n_layers=1)
    save_pretrained(tmp_path, init_params(cfg, 0), cfg)
    text = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(text.replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": 1e-04'))
    with pytest.raises(CheckpointError, match="config.json was changed after save_pretrained"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/tmp/outside.safetensors", "sub/../../x.safetensors",
                                   "..\\outside.safetensors"])
def test_the_shard_index_cannot_leave_the_folder(tmp_path, shard):
    """Rejects joining any weight_map entry to the folder: '../x' or an absolute path loaded
    weights from outside it."""
    cfg = Config.gpt2(n_layers=1, d_model=8, n_heads=2)
    config, tensors = _hf_gpt2(init_params(cfg, 0), cfg)
    folder = _write_hf(tmp_path / "model", config, tensors, shards=2)
    save_arrays(tmp_path / "outside.safetensors", {"transformer.wte.weight": tensors["transformer.wte.weight"]})
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["transformer.wte.weight"] = shard
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="not a file inside the folder"):
        load_pretrained(folder)


def test_weight_map_decides_between_duplicate_tensors(tmp_path):
    """Rejects reading every shard and letting the last one win: a stale copy of a tensor in
    another shard used to replace the one the index names."""
    cfg = Config.gpt2(n_layers=1, d_model=8, n_heads=2)
    params = init_params(cfg, 0)
    config, tensors = _hf_gpt2(params, cfg)
    folder = _write_hf(tmp_path, config, tensors, shards=2)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    name = "transformer.wte.weight"
    other = next(f for f in set(index["weight_map"].values()) if f != index["weight_map"][name])
    from ministeer.io import load_arrays
    arrays, _ = load_arrays(folder / other, to_backend=False)
    save_arrays(folder / other, {**arrays, name: np.zeros_like(tensors[name])})  # stale copy, sorts later
    assert same_tree(load_pretrained(folder)[0], params)
    del index["weight_map"][name]  # now neither copy is named: refuse rather than guess
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=f"'{name}' is in both"):
        load_pretrained(folder)


def test_quantized_windowed_and_cross_attention_models_are_refused(tmp_path):
    """Rejects casting int8 weights to float and ignoring sliding_window or add_cross_attention:
    each would load a model that computes something else."""
    _hf_error(tmp_path / "a", "quantized weights", cfg=Config.llama(n_layers=1),
              config_change=lambda c: c.update(quantization_config={"quant_method": "bitsandbytes"}))
    _hf_error(tmp_path / "b", r"tensors \['model.norm.weight'\] are int8, not floating point",
              cfg=Config.llama(n_layers=1),
              tensors_change=lambda t: t.update({"model.norm.weight": np.ones(32, np.int8)}))
    _hf_error(tmp_path / "c", "sliding-window attention", cfg=Config.llama(n_layers=1),
              config_change=lambda c: c.update(sliding_window=16))
    _hf_error(tmp_path / "d", "cross-attention", config_change=lambda c: c.update(add_cross_attention=True))
    cfg = Config.llama(n_layers=1)  # a window as long as the context is plain causal attention: honoured
    config, tensors = _hf_llama(init_params(cfg, 0), cfg)
    _write_hf(tmp_path / "e", {**config, "sliding_window": cfg.n_ctx}, tensors)
    assert load_pretrained(tmp_path / "e")[1] == cfg


def test_an_index_that_loses_many_tensors_names_a_few_and_counts_the_rest(tmp_path):
    """A shard index that maps every tensor to a shard without it names five and says how many
    more (rejects a message that lists five and stops, as if those were all)."""
    cfg = Config.gpt2(n_layers=1, d_model=8, n_heads=2)
    config, tensors = _hf_gpt2(init_params(cfg, 0), cfg)
    folder = _write_hf(tmp_path / "model", config, tensors, shards=2)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    swapped = {name: shards[1 - shards.index(shard)] for name, shard in index["weight_map"].items()}
    (folder / "model.safetensors.index.json").write_text(json.dumps({**index, "weight_map": swapped}))
    with pytest.raises(CheckpointError, match=rf"and {len(swapped) - 5} more to shards that do not hold them"):
        load_pretrained(folder)
