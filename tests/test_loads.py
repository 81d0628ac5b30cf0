"""Hostile files load nothing, and cheaply: sizes and config fields are checked before use.

A tiny file may claim a huge model (a million layers, a 2**62-wide MLP) or hide a huge
array (a deflate bomb in an ``.npz``); a config.json may hold a string where a number
belongs. Each is one ``CheckpointError`` naming the field, in under a second and 100 MB.
"""
import json
import math
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ministeer.io.hf import CONFIG_DIGEST, WEIGHTS_DIGEST, _config_sha256, _file_sha256, expected_hf_shapes, \
    load_pretrained, _TO_HF, _fitting_architecture
from ministeer.io.arrays import CheckpointError, load_arrays, load_model, read_safetensors, save_arrays, \
    write_safetensors
from ministeer.model import Config, init_params
from ministeer.tree import flatten
from strategies import configs

FIXTURES = Path(__file__).parent / "fixtures"
SECONDS, MEGABYTES = 1.0, 100


class _TooSlow(BaseException):  # not an Exception: no loader may wrap it into a CheckpointError
    pass


@contextmanager
def cheap():
    """The block must finish in under SECONDS and allocate under MEGABYTES (tracemalloc sees NumPy's
    buffers too); a hard stop at 5x the time budget ends a runaway loader instead of hanging the suite."""
    def stop(*_):
        raise _TooSlow(f"still running after {5 * SECONDS} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 5 * SECONDS)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seconds < SECONDS, f"took {seconds:.2f} s"
    assert peak < MEGABYTES * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MB"


def _hf_folder(tmp_path, arch, **changes):
    folder = tmp_path / arch
    shutil.copytree(FIXTURES / f"hf_tiny_{arch}", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return folder

# ---------------------------------------------------------------- sizes before allocating


def _digestless_model(path, cfg, **config_changes):
    """A model file as another tool (or ministeer 0.1) writes it: config in the metadata, no SHA-256."""
    arrays = flatten(init_params(cfg, 0))
    meta = json.dumps({"config": {**asdict(cfg), **config_changes}})
    if path.suffix == ".safetensors":
        write_safetensors(path, arrays, {"json": meta})
    else:
        np.savez(path, **arrays, __metadata__=np.frombuffer(meta.encode(), np.uint8))
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_a_config_claiming_a_million_layers_is_refused_before_listing_them(tmp_path, suffix):
    """Rejects listing every claimed layer's tensors before comparing with the file (over 100 s
    and 1.6 GB for a 45 KB file); mutant layer_count_unchecked."""
    small = Config.llama(n_layers=2, d_model=16, n_heads=2, n_kv_heads=1, d_mlp=32, vocab_size=32)
    path = _digestless_model(tmp_path / f"m{suffix}", small, n_layers=10 ** 6)
    assert path.stat().st_size < 100_000
    with cheap(), pytest.raises(CheckpointError, match=r"n_layers=1000000 needs at least 9000000 tensors"):
        load_model(path)


@pytest.mark.parametrize("arch,field", [("llama", "num_hidden_layers"), ("gpt2", "n_layer")])
def test_an_hf_config_claiming_a_million_layers_is_refused_before_listing_them(tmp_path, arch, field):
    """Rejects building the expected-tensor table of a million-layer config.json; mutant
    hf_layer_count_unchecked."""
    folder = _hf_folder(tmp_path, arch, **{field: 10 ** 6})
    with cheap(), pytest.raises(CheckpointError, match=rf"{field}=1000000 needs at least"):
        load_pretrained(folder)


def test_the_layer_check_does_not_blame_the_layers_for_a_missing_tensor(tmp_path):
    """Rejects a layer check that counts exactly (it would name n_layers for one lost tensor)."""
    cfg = Config.llama(n_layers=2)
    arrays = flatten(init_params(cfg, 0))
    arrays.pop("model.norm.weight")
    save_arrays(tmp_path / "m.npz", arrays, {"config": asdict(cfg)})
    with pytest.raises(CheckpointError, match=r"missing tensors: \['model.norm.weight'\]"):
        load_model(tmp_path / "m.npz")


def _bomb(path, megabytes):
    """An .npz of one deflated float64 array of ``megabytes`` MB of zeros (a few hundred KB on disk)."""
    zeros = bytes(2 ** 20)
    info = zipfile.ZipInfo("bomb.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z, z.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (megabytes * 2 ** 17,)})
        for _ in range(megabytes):
            f.write(zeros)
    return path


def test_an_npz_decompression_bomb_is_refused_before_it_is_decompressed(tmp_path):
    """Rejects decompressing every member before any check (1.08 GB and 77 s for a 1 MB file);
    mutant npz_no_inflation_limit."""
    path = _bomb(tmp_path / "bomb.npz", 300)
    assert path.stat().st_size < 2 ** 20
    with cheap(), pytest.raises(CheckpointError, match=r"member 'bomb.npy' declares \d+ bytes uncompressed"):
        load_arrays(path)


def test_an_npz_member_claiming_more_than_it_holds_is_refused_from_its_header(tmp_path):
    """Rejects trusting a member's .npy header: a 400 MB shape over 80 stored bytes would be
    allocated before the read fails; mutant npz_declared_unchecked."""
    path = tmp_path / "lie.npz"
    info = zipfile.ZipInfo("lie.npy")  # stored: no compression ratio to give it away
    with zipfile.ZipFile(path, "w") as z, z.open(info, "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (50 * 2 ** 20,)})
        f.write(bytes(80))
    with cheap(), pytest.raises(CheckpointError, match=r"member 'lie.npy' declares shape \[52428800\] of float64"):
        load_arrays(path)


def test_ministeers_own_npz_files_are_far_from_the_size_limits(tmp_path):
    """Rejects limits so tight that a plain (uncompressed) save no longer loads, zeros included."""
    arrays = {"zeros": np.zeros((300, 1000)), "x": np.arange(7.0)}
    save_arrays(tmp_path / "a.npz", arrays, {"k": 1})
    loaded, meta = load_arrays(tmp_path / "a.npz", to_backend=False)
    assert meta == {"k": 1} and all(np.array_equal(loaded[k], arrays[k]) for k in arrays)


def test_a_missing_tensor_error_lists_a_few_names_then_a_count(tmp_path):
    """Rejects an error that lists every missing tensor (thousands for a big model); mutant listed_all."""
    cfg = Config.llama(n_layers=2)
    arrays = flatten(init_params(cfg, 0))
    renamed = {k.replace("layers.1.", "layers.one."): v for k, v in arrays.items()}  # 9 missing, 9 unexpected
    save_arrays(tmp_path / "m.npz", renamed, {"config": asdict(cfg)})
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "m.npz")
    message = str(err.value)
    assert "missing tensors: ['model.layers.1.input_layernorm.weight'," in message
    assert message.count("model.layers.1.") == 5 and "and 4 more" in message
    assert message.count("model.layers.one.") == 5


@given(configs())
def test_expected_hf_shapes_are_the_shapes_of_the_hf_layout(cfg):
    """Rejects a shapes-only table that drifts from the renaming it describes (a missed transpose,
    a wrong fused width): it must equal the shapes ``_TO_HF`` produces from real parameters.
    Mutant hf_shapes_untransposed."""
    flat = {k: np.asarray(v) for k, v in flatten(init_params(cfg, 0)).items()}
    real = _TO_HF[_fitting_architecture(cfg)](flat, cfg)
    assert expected_hf_shapes(cfg) == {k: a.shape for k, a in real.items()}

# ---------------------------------------------------------------- config.json fields, typed and ranged


BAD_FIELDS = {  # (fixture, field, a value of the wrong type or range)
    "llama": [("num_attention_heads", 0), ("num_attention_heads", True), ("num_attention_heads", "4"),
              ("rope_scaling", "linear"), ("architectures", 5), ("architectures", "LlamaForCausalLM"),
              ("architectures", [5]), ("sliding_window", "4096"), ("sliding_window", 0),
              ("intermediate_size", 2 ** 62), ("intermediate_size", 2.0), ("tie_word_embeddings", "false"),
              ("tie_word_embeddings", 0), ("rope_theta", 0), ("rope_theta", -1.0), ("rope_theta", "500"),
              ("rope_theta", math.inf), ("rms_norm_eps", 0), ("rms_norm_eps", "1e-5"), ("hidden_act", 5),
              ("num_key_value_heads", 0), ("head_dim", -4), ("max_position_embeddings", 0),
              ("hidden_size", 10 ** 12), ("num_hidden_layers", -1), ("vocab_size", [32]), ("mlp_bias", "no"),
              ("rope_parameters", [500.0]), ("rope_parameters.rope_theta", 0),
              ("rope_parameters.rope_type", 5), ("quantization_config", "int8"), ("model_type", 1)],
    "gpt2": [("n_head", 0), ("n_embd", "16"), ("n_layer", 1.5), ("n_inner", 0), ("n_positions", -16),
             ("layer_norm_epsilon", 0.0), ("activation_function", 5), ("scale_attn_weights", "yes"),
             ("scale_attn_by_inverse_layer_idx", 1), ("add_cross_attention", "false"), ("vocab_size", 0),
             ("tie_word_embeddings", "true")],
}
CASES = [(arch, field, value) for arch, rows in BAD_FIELDS.items() for field, value in rows]


def _corrupt(folder, field, value, digested):
    config = json.loads((folder / "config.json").read_text())
    outer, _, inner = field.partition(".")
    if inner:
        config[outer] = {**config.get(outer, {}), inner: value}
    else:
        config[outer] = value
    if digested:  # as save_pretrained writes it: the digests match the edited file, only the values are wrong
        config[WEIGHTS_DIGEST] = _file_sha256(folder / "model.safetensors")
        config[CONFIG_DIGEST] = _config_sha256(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("digested", [False, True], ids=["foreign", "digested"])
@pytest.mark.parametrize("arch,field,value", CASES)
def test_every_config_field_of_the_wrong_type_or_range_is_one_error_naming_it(tmp_path, arch, field, value, digested):
    """Rejects using config.json's values unchecked: ZeroDivisionError (num_attention_heads 0),
    AttributeError (rope_scaling "linear"), TypeError (architectures 5, sliding_window "4096")
    even with intact digests, a bare NumPy error (intermediate_size 2**62), "false" read as
    tied, rope_theta 0 replaced by 10000. Mutants schema_bool_is_int, schema_skips_nested."""
    folder = _hf_folder(tmp_path, arch)
    _corrupt(folder, field, value, digested)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(folder)
    assert f"config.json's {field} is {value!r}"[:80] in str(err.value)
    assert "expected" in str(err.value)


SIZES = {"llama": ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                   "head_dim", "intermediate_size", "max_position_embeddings", "sliding_window"],
         "gpt2": ["vocab_size", "n_embd", "n_layer", "n_head", "n_inner", "n_positions"]}
NOT_A_SIZE = st.one_of(st.integers(max_value=0), st.integers(min_value=2 ** 31), st.booleans(),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4),
                       st.lists(st.integers(1, 9), max_size=2), st.dictionaries(st.text(max_size=2), st.integers()))


@settings(deadline=None)
@given(st.sampled_from([(arch, f) for arch, fields in SIZES.items() for f in fields]), NOT_A_SIZE)
def test_a_size_that_is_not_a_positive_int32_is_one_error_naming_it(tmp_path_factory, arch_field, value):
    """Any JSON value but an integer in [1, 2**31 - 1] in a size field is refused by name, never
    cast (2.0 -> 2, True -> 1) or tripped over later; mutant schema_bool_is_int."""
    arch, field = arch_field
    folder = _hf_folder(tmp_path_factory.mktemp("hf"), arch)
    _corrupt(folder, field, value, digested=False)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(folder)
    assert f"config.json's {field} is {value!r}"[:80] in str(err.value)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_fixtures_with_valid_fields_still_load(tmp_path, arch):
    """Rejects a schema that refuses the values transformers itself writes (nulls, nested rope_parameters)."""
    params, cfg = load_pretrained(_hf_folder(tmp_path, arch))
    assert cfg.n_layers == 2 and (cfg.rope_theta == 500.0 if arch == "llama" else cfg.tied)


def test_an_unset_rope_theta_is_the_default_and_an_explicit_one_is_kept(tmp_path):
    """Rejects a schema that refuses null (transformers writes null for unset fields) and a reader
    that prefers rope_parameters' theta over an explicit top-level rope_theta."""
    folder = _hf_folder(tmp_path, "llama", rope_parameters=None, rope_theta=None)
    assert load_pretrained(folder)[1].rope_theta == 10000.0
    folder = _hf_folder(tmp_path / "b", "llama", rope_theta=1e-3)
    assert load_pretrained(folder)[1].rope_theta == 1e-3


@pytest.mark.parametrize("metadata", [0, "", [], 0.0, False])
def test_safetensors_metadata_must_be_an_object_of_strings(tmp_path, metadata):
    """Rejects ``metadata or {}``, which accepted 0 and "" as no metadata; mutant metadata_falsy_default."""
    path = tmp_path / "x.safetensors"
    write_safetensors(path, {"a": np.zeros(2)}, metadata)
    with pytest.raises(CheckpointError, match="__metadata__ must map strings to strings"):
        read_safetensors(path)
    with pytest.raises(CheckpointError, match="__metadata__ must map strings to strings"):
        load_arrays(path)


def test_verify_reports_a_bad_model_folder_in_one_line(tmp_path):
    """Rejects a traceback (exit 1) from ``ministeer verify --model DIR`` for a bad config.json."""
    folder = _hf_folder(tmp_path, "llama", num_attention_heads=0)
    run = subprocess.run([sys.executable, "-m", "ministeer.cli", "verify", "--model", str(folder), "--claims", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "config.json's num_attention_heads is 0" in run.stderr
