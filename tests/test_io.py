"""Checkpoints: bitwise round trips, atomic writes, and a clear error for every bad file.

Hugging Face folders are tested in ``tests/test_hf.py``.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ministeer.io import (CheckpointError, load_arrays, load_model, save_arrays,
                          save_model)
from ministeer.model import Config, init_params, param_shapes
from ministeer.tree import flatten, named_leaves
from strategies import configs, random_params, seeds

SUFFIXES = [".safetensors", ".npz"]


def same_tree(a, b):
    """Same leaf names, dtypes, shapes and bits (dict order aside)."""
    la, lb = dict(named_leaves(a)), dict(named_leaves(b))
    return la.keys() == lb.keys() and all(
        la[n].dtype == lb[n].dtype and la[n].shape == lb[n].shape and np.array_equal(la[n], lb[n]) for n in la)


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())

# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", SUFFIXES)
@given(cfg=st.one_of(configs(), configs(dtype="float32")), seed=seeds)
def test_model_round_trip_is_bitwise(suffix, cfg, seed):
    params = random_params(cfg, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model" + suffix)
        save_model(path, params, cfg)
        loaded, loaded_cfg = load_model(path)
        assert files_in(folder) == ["model" + suffix]  # no temporary files left behind
    assert loaded_cfg == cfg
    assert same_tree(loaded, params)


@given(cfg=configs())
def test_param_shapes_match_init_params(cfg):
    assert param_shapes(cfg) == {name: a.shape for name, a in named_leaves(init_params(cfg))}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_arrays_of_every_dtype_and_rank_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    arrays = {"f64": rng.normal(size=(3, 4)), "f32": rng.normal(size=5).astype(np.float32),
              "f16": rng.normal(size=2).astype(np.float16), "i64": np.arange(6).reshape(2, 3),
              "i8": np.array([-3, 4], np.int8), "u8": np.array([0, 255], np.uint8), "flag": np.array([True, False]),
              "scalar": np.float64(2.5), "empty": np.zeros((2, 0, 3)), "strided": rng.normal(size=(4, 6))[:, ::2].T,
              "big_endian": np.arange(3, dtype=">f8")}
    meta = {"name": "ünïcode", "numbers": [1, 2.5], "nested": {"a": None}}
    save_arrays(tmp_path / ("x" + suffix), arrays, meta)
    loaded, loaded_meta = load_arrays(tmp_path / ("x" + suffix))
    assert loaded_meta == meta and set(loaded) == set(arrays)
    for name, a in arrays.items():
        assert loaded[name].shape == a.shape and loaded[name].dtype.newbyteorder("=") == a.dtype.newbyteorder("=")
        assert np.array_equal(loaded[name], a), name


def test_safetensors_files_interoperate_with_the_safetensors_package(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {"w": np.random.default_rng(1).normal(size=(3, 2)), "ids": np.arange(4, dtype=np.int32)}
    save_arrays(tmp_path / "ours.safetensors", arrays, {"k": 1})
    theirs = st_numpy.load_file(str(tmp_path / "ours.safetensors"))
    assert all(np.array_equal(theirs[k], arrays[k]) for k in arrays)
    st_numpy.save_file(arrays, str(tmp_path / "theirs.safetensors"))
    ours, meta = load_arrays(tmp_path / "theirs.safetensors")
    assert meta == {} and all(np.array_equal(ours[k], arrays[k]) for k in arrays)


def _bfloat16_file(path, values):
    """A safetensors file with one BF16 tensor: the top 16 bits of each float32."""
    bits = (np.asarray(values, np.float32).view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"x": {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [0, bits.nbytes]}})
    header += " " * (-len(header) % 8)
    Path(path).write_bytes(len(header).to_bytes(8, "little") + header.encode() + bits.tobytes())


def test_bfloat16_tensors_are_read_exactly(tmp_path):
    exact_in_bf16 = np.array([[1.0, -2.5, 0.15625], [3.0e38, -1.0e-38, 0.0]], np.float32)
    exact_in_bf16 = (exact_in_bf16.view(np.uint32) & 0xFFFF0000).view(np.float32)  # representable values
    _bfloat16_file(tmp_path / "bf.safetensors", exact_in_bf16)
    loaded, _ = load_arrays(tmp_path / "bf.safetensors")
    assert loaded["x"].dtype == np.float32 and np.array_equal(loaded["x"], exact_in_bf16)

# ---------------------------------------------------------------- atomic writes


def _fail_midway(path, *args, **kwargs):
    Path(path).write_bytes(b"half a checkpoint")
    raise OSError("disk full")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, suffix):
    cfg = Config.llama(n_layers=1)
    path = tmp_path / ("model" + suffix)
    save_model(path, init_params(cfg, 0), cfg)
    before = path.read_bytes()
    import ministeer.io.arrays
    if suffix == ".safetensors":
        monkeypatch.setattr(ministeer.io.arrays, "write_safetensors", _fail_midway)
    else:
        monkeypatch.setattr(ministeer.io.arrays.np, "savez", lambda f, **arrays: (f.write(b"partial"), _fail_midway(
            f.name))[1])
    with pytest.raises(OSError, match="disk full"):
        save_model(path, init_params(cfg, 1), cfg)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert files_in(tmp_path) == [path.name]
    assert same_tree(load_model(path)[0], init_params(cfg, 0))


def test_writing_unsupported_data_fails_before_touching_the_target(tmp_path):
    with pytest.raises(ValueError, match="cannot store 'words'"):
        save_arrays(tmp_path / "x.safetensors", {"words": np.array(["a", "b"])})
    with pytest.raises(ValueError, match=".safetensors or .npz"):
        save_arrays(tmp_path / "x.pt", {"w": np.zeros(2)})
    assert files_in(tmp_path) == []

# ---------------------------------------------------------------- corrupt, truncated, missing


@pytest.mark.parametrize("suffix", SUFFIXES)
@given(cut=st.floats(0.0, 0.999))
def test_any_truncation_is_a_checkpoint_error(suffix, cut):
    cfg = Config.gpt2(n_layers=1, d_model=8, n_heads=2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("model" + suffix)
        save_model(path, init_params(cfg, 0), cfg)
        data = path.read_bytes()
        path.write_bytes(data[:int(cut * len(data))])
        with pytest.raises(CheckpointError, match="model" + suffix):
            load_model(path)


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    ((10**9).to_bytes(8, "little") + b"{}", "does not fit"),
    ((8).to_bytes(8, "little") + b"{not json", "corrupt safetensors header"),
    ((24).to_bytes(8, "little") + b'{"x": {"dtype": "F64"}} ', "malformed header entry for 'x'"),
    ((64).to_bytes(8, "little") + b'{"x":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}'.ljust(64) + bytes(8),
     "unsupported dtype C64"),
    ((64).to_bytes(8, "little") + b'{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}'.ljust(64) + bytes(8),
     "tensor 'x'.*truncated or corrupt"),
])
def test_corrupt_safetensors_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_arrays(path)


def test_missing_files_and_foreignfiles_in(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file at .*nowhere.npz"):
        load_model(tmp_path / "nowhere.npz")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="could not read checkpoint .*garbage.npz"):
        load_model(tmp_path / "garbage.npz")
    (tmp_path / "model.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="unknown checkpoint format '.ckpt'"):
        load_arrays(tmp_path / "model.ckpt")
    save_arrays(tmp_path / "plain.npz", {"w": np.zeros(2)})
    with pytest.raises(CheckpointError, match="no model config.*load_pretrained"):
        load_model(tmp_path / "plain.npz")

# ---------------------------------------------------------------- files that do not match their config


def _saved_with(tmp_path, cfg, arrays, config=None):
    path = tmp_path / "model.safetensors"
    from dataclasses import asdict
    save_arrays(path, arrays, {"config": asdict(cfg) if config is None else config})
    return path


def test_mismatched_tensors_are_named(tmp_path):
    cfg = Config.llama(n_layers=2)
    flat = flatten(init_params(cfg, 0))
    q = "model.layers.1.self_attn.q_proj.weight"
    missing = {k: v for k, v in flat.items() if k != q}
    with pytest.raises(CheckpointError, match=rf"missing tensors: \['{q}'\]"):
        load_model(_saved_with(tmp_path, cfg, missing))
    with pytest.raises(CheckpointError, match=r"unexpected tensors: \['model.layers.2.mlp.up_proj.weight'\]"):
        load_model(_saved_with(tmp_path, cfg, {**flat, "model.layers.2.mlp.up_proj.weight": np.zeros(2)}))
    with pytest.raises(CheckpointError, match=rf"{q}: \[32, 16\] in file, expected \[32, 32\]"):
        load_model(_saved_with(tmp_path, cfg, {**flat, q: np.zeros((32, 16))}))
    with pytest.raises(CheckpointError, match=r"not float64"):
        load_model(_saved_with(tmp_path, cfg, {**flat, q: flat[q].astype(np.float32)}))


def test_bad_configs_in_files_are_checkpoint_errors(tmp_path):
    from dataclasses import asdict
    cfg = Config.llama(n_layers=1)
    flat = flatten(init_params(cfg, 0))
    with pytest.raises(CheckpointError, match=r"unknown fields \['n_experts'\]"):
        load_model(_saved_with(tmp_path, cfg, flat, {**asdict(cfg), "n_experts": 8}))
    with pytest.raises(CheckpointError, match="not divisible by n_heads"):
        load_model(_saved_with(tmp_path, cfg, flat, {**asdict(cfg), "d_model": 30}))


def test_save_model_refuses_params_that_do_not_fit_the_config(tmp_path):
    with pytest.raises(CheckpointError, match="missing tensors"):
        save_model(tmp_path / "m.npz", init_params(Config.llama(n_layers=1)), Config.llama(n_layers=2))
    assert files_in(tmp_path) == []

# ---------------------------------------------------------------- strict safetensors (as the package)


def _raw_safetensors(path, entries, body):
    """A hand-made safetensors file: ``entries`` = {name: (dtype, shape, begin, end)}."""
    header = json.dumps({n: {"dtype": d, "shape": s, "data_offsets": [b, e]} for n, (d, s, b, e) in entries.items()})
    header += " " * (-len(header) % 8)
    Path(path).write_bytes(len(header).to_bytes(8, "little") + header.encode() + body)


@pytest.mark.parametrize("entries, body, message", [
    ({"a": ("F64", [2], 0, 16), "b": ("F64", [1], 8, 16)}, bytes(16), "overlaps"),
    ({"a": ("F64", [1], 0, 8), "b": ("F64", [1], 16, 24)}, bytes(24), "gap of 8 bytes"),
    ({"a": ("F64", [1], 0, 8)}, bytes(12), "4 bytes after the last tensor"),
    ({"a": ("F64", [1], 8, 16)}, bytes(16), "gap of 8 bytes"),
    ({"a": ("F64", [-1], 0, 8)}, bytes(8), "malformed header entry"),
    ({"a": ("F64", [True], 0, 8)}, bytes(8), "malformed header entry"),
], ids=["overlap", "gap", "trailing", "leading-gap", "negative-dim", "bool-dim"])
def test_safetensors_reader_is_as_strict_as_the_package(tmp_path, entries, body, message):
    """Rejects a reader that only checks each tensor's range (overlaps, gaps, trailing bytes
    and negative or boolean dimensions used to load); the ``safetensors`` package refuses each too."""
    path = tmp_path / "x.safetensors"
    _raw_safetensors(path, entries, body)
    with pytest.raises(CheckpointError, match=message):
        load_arrays(path)
    st_numpy = pytest.importorskip("safetensors.numpy")
    with pytest.raises(Exception):
        st_numpy.load_file(str(path))


def test_duplicate_header_keys_and_non_string_metadata_are_refused(tmp_path):
    """Rejects ``json.loads``' last-key-wins: a second entry for a name must not replace the first."""
    path = tmp_path / "x.safetensors"
    header = b'{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(CheckpointError, match="duplicate key 'a'"):
        load_arrays(path)
    header = b'{"__metadata__":{"n":1},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(CheckpointError, match="strings to strings"):
        load_arrays(path)

# ---------------------------------------------------------------- verified on load


def _flip(path, bit):
    data = bytearray(Path(path).read_bytes())
    data[bit // 8] ^= 1 << (bit % 8)
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("suffix", SUFFIXES)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), bit=st.integers(0, 7))
def test_every_flipped_bit_is_an_error_or_changes_nothing(suffix, fraction, bit):
    """Rejects a loader without the digest: a flip in the data (or in a header number such as
    rope_theta) used to load silently as a different model. Flips in bytes nobody reads
    (zip timestamps, header padding turned into other whitespace) may load: then the model
    must be bitwise the saved one."""
    cfg = Config.llama(n_layers=1, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=8, vocab_size=8)
    params = random_params(cfg, 0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("model" + suffix)
        save_model(path, params, cfg)
        _flip(path, int(fraction * path.stat().st_size) * 8 + bit)
        try:
            loaded, loaded_cfg = load_model(path)
        except CheckpointError:
            return
    assert loaded_cfg == cfg and same_tree(loaded, params)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_flipped_data_bit_names_the_digest(tmp_path, suffix):
    """Rejects a loader that verifies nothing: the last data byte of the file is a weight."""
    cfg = Config.llama(n_layers=1)
    path = tmp_path / ("model" + suffix)
    save_model(path, init_params(cfg, 0), cfg)
    if suffix == ".safetensors":
        _flip(path, path.stat().st_size * 8 - 20)
        with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
            load_model(path)
    else:  # npz: edit one stored weight and re-zip, keeping the old digest
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["model.norm.weight"] = arrays["model.norm.weight"] * 2
        np.savez(path, **arrays)
        with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
            load_model(path)


def test_a_damaged_marker_is_not_read_as_an_old_file(tmp_path):
    """Rejects treating a file whose digest key was damaged as an unverified ministeer 0.1 file."""
    path = tmp_path / "x.safetensors"
    save_arrays(path, {"w": np.zeros(2)}, {"k": 1})
    data = path.read_bytes().replace(b'"sha256"', b'"sha257"')
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="damaged ministeer header"):
        load_arrays(path)


def test_files_without_a_digest_still_load(tmp_path):
    """Files of other tools and ministeer 0.1 (the shipped base model) carry no digest: they load."""
    from ministeer.experiments.pretrain import BASE_PATH
    params, cfg = load_model(BASE_PATH)
    assert cfg.vocab_size > 0
    old = tmp_path / "old.safetensors"  # ministeer 0.1 wrote {"json": ...} only
    from ministeer.io import write_safetensors
    write_safetensors(old, {"w": np.ones(2)}, {"json": json.dumps({"k": 1})})
    arrays, meta = load_arrays(old)
    assert meta == {"k": 1} and np.array_equal(arrays["w"], np.ones(2))


def test_missing_config_fields_are_errors_not_defaults(tmp_path):
    """Rejects ``Config(**stored)``, which filled a missing rope_theta (or an empty ``{}``) with defaults."""
    from dataclasses import asdict
    cfg = Config.llama(n_layers=1, rope_theta=500.0)
    flat = flatten(init_params(cfg, 0))
    stored = {k: v for k, v in asdict(cfg).items() if k != "rope_theta"}
    with pytest.raises(CheckpointError, match=r"lacks fields \['rope_theta'\]"):
        load_model(_saved_with(tmp_path, cfg, flat, stored))
    with pytest.raises(CheckpointError, match="lacks fields"):
        load_model(_saved_with(tmp_path, cfg, flat, {}))

# ---------------------------------------------------------------- durable writes


def test_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    """Rejects leaving the temporaries of killed saves forever: a dead writer's file goes at the
    next save of that target; a live writer's, and other targets', stay."""
    cfg = Config.llama(n_layers=1)
    path = tmp_path / "model.npz"
    dead = tmp_path / ".model.npz.999999999.ab12cd34.tmp"  # pid above any pid_max
    live = tmp_path / f".model.npz.{os.getppid()}.ab12cd34.tmp"
    other = tmp_path / ".other.npz.999999999.ab12cd34.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"half")
    save_model(path, init_params(cfg, 0), cfg)
    assert files_in(tmp_path) == sorted([live.name, other.name, path.name])


def test_files_respect_the_umask_and_are_fsynced(tmp_path, monkeypatch):
    """Rejects mkstemp's 0600 (other users could not read a shared checkpoint) and a save that
    never fsyncs the file and its folder (a power cut could lose a finished save)."""
    import ministeer.io.atomic
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(ministeer.io.atomic.os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_mode), real_fsync(fd)))
    old = os.umask(0o027)
    try:
        save_arrays(tmp_path / "x.npz", {"w": np.zeros(2)})
    finally:
        os.umask(old)
    assert (tmp_path / "x.npz").stat().st_mode & 0o777 == 0o640
    import stat
    assert [stat.S_ISREG(m) for m in synced] == [True, False]  # the file, then its folder


def test_another_tools_sha256_key_is_not_taken_for_ours(tmp_path):
    """Rejects keying verification on a bare 'sha256' metadata key: other tools may write one."""
    from ministeer.io import write_safetensors
    path = tmp_path / "theirs.safetensors"
    write_safetensors(path, {"w": np.ones(2)}, {"format": "pt", "sha256": "of something else"})
    arrays, meta = load_arrays(path)
    assert meta == {} and np.array_equal(arrays["w"], np.ones(2))
