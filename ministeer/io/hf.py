"""Hugging Face folders <-> ministeer models, for ``LlamaForCausalLM`` and ``GPT2LMHeadModel``.

A folder holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). Loading is a renaming:

* Llama: ministeer's parameter names *are* HF's (``model.layers.0.self_attn.q_proj.weight``),
  and HF's rotary embedding uses the same rotate-half convention as ``ops.rope``.
* GPT-2: ``transformer.h.{l}.attn.c_attn`` is one fused q/k/v projection stored as a
  ``Conv1D`` with an ``[in, out]`` weight: it is split in three and transposed into
  ``q_proj``, ``k_proj``, ``v_proj`` (``[out, in]``). ``c_proj``/``c_fc`` transpose likewise;
  ``ln_1``/``ln_2``/``ln_f``/``wte``/``wpe`` rename. GPT-2's ``gelu_new`` is the tanh GELU of
  ``ops.gelu``.

Both directions go through one table per architecture (``_TO_HF``); the expected tensor
names and shapes of a file (``expected_hf_shapes``) are derived from ``model.param_shapes(cfg)``
in the same layout, shapes only, and every missing, unexpected or mis-shaped tensor is
reported by its HF name. Every config.json field read is typed and ranged first
(``CONFIG_SCHEMA``), and the claimed layer count is compared with the file's tensors before
any per-layer table is built. Pickle files
(``pytorch_model.bin``) are refused. Checked in ``tests/test_io.py``, ``tests/test_loads.py``, against
``transformers`` itself when it is installed.
"""
import hashlib
import json
import math
from pathlib import Path, PurePosixPath

import numpy as np  # host side: checkpoints live on the host

from ..backend import from_numpy, to_numpy
from ..model import param_shapes
from ..tree import flatten, unflatten
from .arrays import (CheckpointError, check_arrays, check_layer_count, first_few, read_safetensors,
                     write_safetensors)
from .atomic import atomic_write

ARCHITECTURES = ("LlamaForCausalLM", "GPT2LMHeadModel")

# ---------------------------------------------------------------- config.json <-> Config
# Every field ministeer reads, with the JSON value it must hold (null or absent: the default).
# Checked before any field is used, so a wrong type or range is one CheckpointError naming
# the field, never a traceback or a silently different model.

_MAX_SIZE = 2 ** 31 - 1  # a product of two sizes stays inside int64: no shape arithmetic overflows
_SIZE = (lambda v: _is_int(v) and 1 <= v <= _MAX_SIZE, f"an integer from 1 to {_MAX_SIZE}")
_FLAG = (lambda v: isinstance(v, bool), "true or false")
_POSITIVE = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
             "a finite number > 0")
_NAME = (lambda v: isinstance(v, str), "a string")
_TABLE = (lambda v: isinstance(v, dict), "a JSON object")
CONFIG_SCHEMA = {
    "architectures": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of strings"),
    "model_type": _NAME, "vocab_size": _SIZE, "tie_word_embeddings": _FLAG, "quantization_config": _TABLE,
    "sliding_window": _SIZE, "use_sliding_window": _FLAG, "add_cross_attention": _FLAG,
    "is_encoder_decoder": _FLAG,
    # LlamaForCausalLM
    "hidden_size": _SIZE, "num_hidden_layers": _SIZE, "num_attention_heads": _SIZE, "num_key_value_heads": _SIZE,
    "head_dim": _SIZE, "intermediate_size": _SIZE, "max_position_embeddings": _SIZE, "hidden_act": _NAME,
    "attention_bias": _FLAG, "mlp_bias": _FLAG, "rms_norm_eps": _POSITIVE, "rope_theta": _POSITIVE,
    "rope_scaling": _TABLE, "rope_parameters": _TABLE,
    "rope_scaling.rope_type": _NAME, "rope_scaling.type": _NAME, "rope_scaling.rope_theta": _POSITIVE,
    "rope_parameters.rope_type": _NAME, "rope_parameters.type": _NAME, "rope_parameters.rope_theta": _POSITIVE,
    # GPT2LMHeadModel
    "n_embd": _SIZE, "n_layer": _SIZE, "n_head": _SIZE, "n_inner": _SIZE, "n_positions": _SIZE,
    "layer_norm_epsilon": _POSITIVE, "activation_function": _NAME, "scale_attn_weights": _FLAG,
    "scale_attn_by_inverse_layer_idx": _FLAG,
}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_config_fields(hf, source):
    """Every ``CONFIG_SCHEMA`` field present (and not null) holds its kind of value; dotted names are nested."""
    for field, (ok, expected) in CONFIG_SCHEMA.items():
        outer, _, inner = field.partition(".")
        value = hf.get(outer)
        if inner:
            value = value.get(inner) if isinstance(value, dict) else None
        if value is not None and not ok(value):
            raise CheckpointError(f"{source}: config.json's {field} is {value!r:.100}; expected {expected}")


def _require(hf, key, source):
    if hf.get(key) is None:
        raise CheckpointError(f"{source}: config.json has no {key!r}")
    return hf[key]


def _refuse(source, what):
    raise CheckpointError(f"{source}: {what}; ministeer implements plain Llama and GPT-2 only")


def _rope_theta(hf, source):
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        _refuse(source, f"rope scaling {rope!r} is not supported")
    theta = hf.get("rope_theta")  # 0 is refused by the schema, never replaced by the default
    theta = rope.get("rope_theta") if theta is None else theta
    return float(10000.0 if theta is None else theta)


def _refuse_unsupported(hf, source):
    """Settings that change what the model computes and ministeer does not implement."""
    if hf.get("quantization_config"):
        _refuse(source, f"quantized weights (quantization_config={hf['quantization_config']!r}) cannot be "
                "cast to float; load the unquantized model")
    window, n_ctx = hf.get("sliding_window"), hf.get("max_position_embeddings", hf.get("n_positions"))
    if window is not None and hf.get("use_sliding_window", True) and (n_ctx is None or window < n_ctx):
        _refuse(source, f"sliding-window attention (sliding_window={window}) is not implemented (only full "
                "causal attention, equal to it when sliding_window >= max_position_embeddings)")
    if hf.get("add_cross_attention") or hf.get("is_encoder_decoder"):
        _refuse(source, "cross-attention (add_cross_attention / is_encoder_decoder) is not part of a decoder-only model")


def _llama_config(hf, dtype, tied, source):
    from ..model import Config
    get = lambda key: _require(hf, key, source)
    if hf.get("hidden_act", "silu") != "silu":
        _refuse(source, f"hidden_act={hf['hidden_act']!r} (expected 'silu')")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        _refuse(source, "attention or MLP biases are not part of Llama")
    n_heads = get("num_attention_heads")
    if hf.get("head_dim") not in (None, get("hidden_size") // n_heads):
        _refuse(source, f"head_dim={hf['head_dim']} differs from hidden_size / num_attention_heads")
    return Config.llama(vocab_size=get("vocab_size"), d_model=get("hidden_size"),
                        n_layers=get("num_hidden_layers"), n_heads=n_heads,
                        n_kv_heads=hf.get("num_key_value_heads") or n_heads, d_mlp=get("intermediate_size"),
                        n_ctx=get("max_position_embeddings"), norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
                        rope_theta=_rope_theta(hf, source), tied=tied, dtype=dtype)


def _gpt2_config(hf, dtype, tied, source):
    from ..model import Config
    get = lambda key: _require(hf, key, source)
    if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        _refuse(source, f"activation_function={hf['activation_function']!r} (expected the tanh GELU 'gelu_new')")
    if hf.get("scale_attn_by_inverse_layer_idx") or not hf.get("scale_attn_weights", True):
        _refuse(source, "non-standard attention scaling")
    d = get("n_embd")
    return Config.gpt2(vocab_size=get("vocab_size"), d_model=d, n_layers=get("n_layer"), n_heads=get("n_head"),
                       n_kv_heads=get("n_head"), d_mlp=hf.get("n_inner") or 4 * d, n_ctx=get("n_positions"),
                       norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), tied=tied, dtype=dtype)


def _architecture(hf, source):
    arch = (hf.get("architectures") or [None])[0]
    arch = arch or {"llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"}.get(hf.get("model_type"))
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{source}: architecture {arch or hf.get('model_type')!r} is not supported; "
                              f"load_pretrained reads {', '.join(ARCHITECTURES)}")
    return arch


def config_to_hf(cfg):
    """The ``config.json`` dict for ``cfg``; ``ValueError`` if no supported architecture fits."""
    arch = _fitting_architecture(cfg)
    common = dict(vocab_size=cfg.vocab_size, tie_word_embeddings=cfg.tied, dtype=cfg.dtype, torch_dtype=cfg.dtype)
    if arch == "LlamaForCausalLM":
        return dict(architectures=[arch], model_type="llama", hidden_size=cfg.d_model,
                    num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                    num_key_value_heads=cfg.n_kv_heads, head_dim=cfg.d_head, intermediate_size=cfg.d_mlp,
                    max_position_embeddings=cfg.n_ctx, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
                    rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
                    hidden_act="silu", attention_bias=False, mlp_bias=False, **common)
    return dict(architectures=[arch], model_type="gpt2", n_embd=cfg.d_model, n_layer=cfg.n_layers,
                n_head=cfg.n_heads, n_inner=cfg.d_mlp, n_positions=cfg.n_ctx, layer_norm_epsilon=cfg.norm_eps,
                activation_function="gelu_new", scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False,
                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)


def _fitting_architecture(cfg):
    wants = {"LlamaForCausalLM": dict(norm="rms", mlp="swiglu", pos="rope", bias=False),
             "GPT2LMHeadModel": dict(norm="layer", mlp="gelu", pos="learned", bias=True, n_kv_heads=cfg.n_heads)}
    for arch, choices in wants.items():
        if all(getattr(cfg, k) == v for k, v in choices.items()):
            return arch
    raise ValueError(f"no Hugging Face architecture matches {cfg}: LlamaForCausalLM needs {wants['LlamaForCausalLM']}, "
                     f"GPT2LMHeadModel needs {wants['GPT2LMHeadModel']}")

# ---------------------------------------------------------------- tensor renaming


def _llama_to_hf(flat, cfg):
    return dict(flat)  # the names are HF's already


def _llama_from_hf(t, cfg):
    return dict(t)


# GPT-2 <-> ours, one row per tensor: (HF name, our name, stored transposed). "{l}" is the layer.
# GPT-2's Conv1D keeps weights as [in, out]; ours are [out, in]. c_attn is q, k, v fused.
GPT2_TABLE = [("transformer.wte.weight", "model.embed_tokens.weight", False),
              ("transformer.wpe.weight", "model.embed_positions.weight", False),
              ("transformer.ln_f.weight", "model.norm.weight", False),
              ("transformer.ln_f.bias", "model.norm.bias", False)]
GPT2_LAYER_TABLE = [("ln_1.weight", "input_layernorm.weight", False), ("ln_1.bias", "input_layernorm.bias", False),
                    ("ln_2.weight", "post_attention_layernorm.weight", False),
                    ("ln_2.bias", "post_attention_layernorm.bias", False),
                    ("attn.c_proj.weight", "self_attn.o_proj.weight", True),
                    ("attn.c_proj.bias", "self_attn.o_proj.bias", False),
                    ("mlp.c_fc.weight", "mlp.up_proj.weight", True), ("mlp.c_fc.bias", "mlp.up_proj.bias", False),
                    ("mlp.c_proj.weight", "mlp.down_proj.weight", True),
                    ("mlp.c_proj.bias", "mlp.down_proj.bias", False)]
QKV = [f"self_attn.{p}_proj" for p in "qkv"]


def _gpt2_rows(cfg):
    """Every ``(HF name, our name, transposed)`` of a GPT-2 config, fused q/k/v excluded."""
    rows = list(GPT2_TABLE) + [("lm_head.weight", "lm_head.weight", False)] * (not cfg.tied)
    for l in range(cfg.n_layers):
        rows += [(f"transformer.h.{l}.{hf}", f"model.layers.{l}.{ours}", t) for hf, ours, t in GPT2_LAYER_TABLE]
    return rows


def _gpt2_to_hf(flat, cfg):
    out = {hf: flat[ours].T if t else flat[ours] for hf, ours, t in _gpt2_rows(cfg)}
    for l in range(cfg.n_layers):
        ours, hf = f"model.layers.{l}.", f"transformer.h.{l}.attn.c_attn."
        out[hf + "weight"] = np.concatenate([flat[ours + m + ".weight"].T for m in QKV], axis=1)  # [d, 3d]
        out[hf + "bias"] = np.concatenate([flat[ours + m + ".bias"] for m in QKV])
    return out


def _gpt2_from_hf(t, cfg):
    flat = {ours: t[hf].T if tr else t[hf] for hf, ours, tr in _gpt2_rows(cfg)}
    for l in range(cfg.n_layers):
        ours, hf = f"model.layers.{l}.", f"transformer.h.{l}.attn.c_attn."
        weights = np.split(t[hf + "weight"], 3, axis=1)  # 3 x [d, d]
        for m, w, b in zip(QKV, weights, np.split(t[hf + "bias"], 3)):
            flat[ours + m + ".weight"], flat[ours + m + ".bias"] = w.T, b
    return flat


_TO_HF = {"LlamaForCausalLM": _llama_to_hf, "GPT2LMHeadModel": _gpt2_to_hf}
_LAYERS_FIELD = {"LlamaForCausalLM": "num_hidden_layers", "GPT2LMHeadModel": "n_layer"}
_FROM_HF = {"LlamaForCausalLM": _llama_from_hf, "GPT2LMHeadModel": _gpt2_from_hf}


def expected_hf_shapes(cfg):
    """``{HF tensor name: shape}`` a checkpoint for ``cfg`` must hold: ``_TO_HF``'s layout, shapes only
    (nothing is allocated, whatever sizes the config claims)."""
    shapes = param_shapes(cfg)
    if _fitting_architecture(cfg) == "LlamaForCausalLM":
        return shapes
    out = {hf: shapes[ours][::-1] if t else shapes[ours] for hf, ours, t in _gpt2_rows(cfg)}
    for l in range(cfg.n_layers):  # q, k, v fused: [d, 3d] and [3d]
        out[f"transformer.h.{l}.attn.c_attn.weight"] = (cfg.d_model, 3 * cfg.d_model)
        out[f"transformer.h.{l}.attn.c_attn.bias"] = (3 * cfg.d_model,)
    return out


def _drop_buffers(tensors, arch, tied):
    """Remove non-parameters some checkpoints carry, and normalize GPT-2's optional prefix."""
    if arch == "GPT2LMHeadModel":
        if not any(k.startswith("transformer.") for k in tensors):  # the original OpenAI upload
            tensors = {k if k.startswith("lm_head.") else "transformer." + k: v for k, v in tensors.items()}
        tensors = {k: v for k, v in tensors.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    else:
        tensors = {k: v for k, v in tensors.items() if not k.endswith("rotary_emb.inv_freq")}
    if tied:
        tensors.pop("lm_head.weight", None)  # a tied head is the embedding; HF ignores a stored copy
    return tensors

# ---------------------------------------------------------------- folders


def _shard_path(folder, shard, index):
    """``folder / shard`` for a plain file name of the index; anything that could leave the folder is refused."""
    parts = PurePosixPath(shard).parts if isinstance(shard, str) else ()
    if not parts or shard.startswith(("/", "\\")) or "\\" in shard or ":" in shard or \
            any(p in ("..", ".") for p in parts):
        raise CheckpointError(f"{str(index)!r} names shard {shard!r}, which is not a file inside the folder; "
                              "shards must be plain file names such as 'model-00001-of-00002.safetensors'")
    return folder.joinpath(*parts)


def _read_tensors(folder):
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return _read_file(single)
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{str(index)!r} is not a valid shard index ({err})") from None
        tensors, where = {}, {}
        for shard in shards:
            for name, a in _read_file(_shard_path(folder, shard, index)).items():
                if name in weight_map and weight_map[name] != shard:
                    continue  # a stale copy: the index says which shard holds the tensor
                if name in tensors:
                    raise CheckpointError(f"tensor {name!r} is in both {where[name]!r} and {shard!r} and the "
                                          f"index {str(index)!r} does not say which is meant")
                tensors[name], where[name] = a, shard
        missing = sorted(n for n in weight_map if n not in tensors)
        if missing:
            raise CheckpointError(f"{str(index)!r} maps tensors {first_few(missing)} to shards that do not hold them")
        return tensors
    hint = " (pickle checkpoints are refused: re-save with save_pretrained(..., safe_serialization=True))" \
        if any((folder / n).exists() for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")) else ""
    raise CheckpointError(f"no model.safetensors or model.safetensors.index.json in {str(folder)!r}{hint}")


def _read_file(path):
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file {str(path)!r}")
    try:
        return read_safetensors(path)[0]
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"could not read {str(path)!r}: {type(err).__name__}: {err}") from err


def load_pretrained(folder, dtype="float64"):
    """``(params, cfg)`` from a local HF folder holding a ``LlamaForCausalLM`` or ``GPT2LMHeadModel``.

    Weights are cast to ``dtype`` ("float64" for exact theory checks, "float32" for half
    the memory); bfloat16 and float16 checkpoints load too.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"no config.json in {str(folder)!r} (expected a Hugging Face model folder)")
    try:
        hf = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(config_path)!r} is not valid JSON ({err})") from None
    source = repr(str(folder))
    if not isinstance(hf, dict):
        raise CheckpointError(f"{str(config_path)!r} is not a JSON object")
    check_config_fields(hf, source)  # before any field is used
    arch = _architecture(hf, source)
    _refuse_unsupported(hf, source)
    _verify_save(folder, hf, source)
    tensors = _read_tensors(folder)
    tied = hf.get("tie_word_embeddings")
    tied = ("lm_head.weight" not in tensors) if tied is None else bool(tied)
    try:
        cfg = (_llama_config if arch == "LlamaForCausalLM" else _gpt2_config)(hf, dtype, tied, source)
    except (TypeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{source}: config.json describes an invalid model: {err}") from None
    tensors = _drop_buffers(tensors, arch, tied)
    not_float = sorted(n for n, a in tensors.items() if a.dtype.kind != "f")  # after buffers: masks may be bool
    if not_float:
        raise CheckpointError(f"{source}: tensors {first_few(not_float)} are {tensors[not_float[0]].dtype}, not floating "
                              "point (quantized or foreign weights would be cast silently)")
    check_layer_count(cfg, len(tensors), source, _LAYERS_FIELD[arch], expected_hf_shapes)
    check_arrays(tensors, expected_hf_shapes(cfg), source)
    flat = _FROM_HF[arch](tensors, cfg)
    return unflatten({name: from_numpy(a, cfg.dtype) for name, a in flat.items()}), cfg


def save_pretrained(folder, params, cfg):
    """Write ``config.json`` and ``model.safetensors`` in HF's layout, as one unit.

    The weights are written first, then ``config.json``, which records the SHA-256 of the
    weight file it belongs to (and of itself). A crash between the two renames leaves new
    weights beside the old config: ``load_pretrained`` sees that the digests disagree and
    raises instead of loading a mixture. Each file is atomic and fsynced (``io.atomic_write``).
    """
    arch = _fitting_architecture(cfg)
    flat = {name: to_numpy(a) for name, a in flatten(params).items()}
    check_arrays(flat, param_shapes(cfg), "params")
    tensors = {name: np.ascontiguousarray(a) for name, a in _TO_HF[arch](flat, cfg).items()}
    folder = Path(folder)
    weights = folder / "model.safetensors"
    atomic_write(weights, lambda tmp: write_safetensors(tmp, tensors, {"format": "pt"}))
    config = {**config_to_hf(cfg), WEIGHTS_DIGEST: _file_sha256(weights)}
    config[CONFIG_DIGEST] = _config_sha256(config)
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / "config.json", lambda tmp: Path(tmp).write_text(text))

# ---------------------------------------------------------------- one save, verified as a unit
# Keys ministeer adds to config.json; transformers keeps unknown keys as attributes and ignores them.

WEIGHTS_DIGEST, CONFIG_DIGEST = "ministeer_weights_sha256", "ministeer_config_sha256"


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _config_sha256(hf):
    rest = {k: v for k, v in hf.items() if k != CONFIG_DIGEST}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _verify_save(folder, hf, source):
    """For a folder written by ``save_pretrained``: config.json is intact and the weights are its own."""
    if WEIGHTS_DIGEST not in hf and CONFIG_DIGEST not in hf:
        return  # another tool's folder: nothing recorded to verify
    if hf.get(CONFIG_DIGEST) != _config_sha256(hf):
        raise CheckpointError(f"{source}: config.json was changed after save_pretrained wrote it (its SHA-256 "
                              "does not match; corrupt file or hand edit)")
    weights = folder / "model.safetensors"
    if not weights.is_file() or _file_sha256(weights) != hf.get(WEIGHTS_DIGEST):
        raise CheckpointError(f"{source}: model.safetensors is not the file config.json was saved with: an "
                              "interrupted save_pretrained (new weights, old config) or a corrupt file; save again")
