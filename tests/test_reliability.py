"""Reliability: every bad input gets an error that names the problem; no silent wrong answer.

Two kinds of test. Targeted ones check one refusal each (adapters built for another model,
adapter specs that edit nothing or cannot train, adapter files that disagree with their
specs) and that a run interrupted at any step resumes bitwise, for every method. The fuzz
tests draw hostile inputs (token arrays, adapter specs, configs, checkpoint bytes), decide
with an independent oracle whether each is valid, and require: valid -> the right answer,
invalid -> an exception of an expected type whose message names the offending field.
Anything else (an ``IndexError`` from deep inside, a silently different model) fails.
What is promised, in one page: docs/guarantees.md.
"""
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ministeer import adapters as A
from ministeer.adapters.saving import load_adapters, save_adapters
from ministeer.io import CheckpointError, load_model, save_model
from ministeer.model import Config, forward, init_params, loss_fn
from ministeer.tree import named_leaves
from test_io import same_tree

CFG = Config.llama(vocab_size=11, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=2, n_ctx=8)
PARAMS = init_params(CFG, 0, std=0.3)
TOKENS = np.array([[1, 2, 3, 4, 5, 6]])

# ---------------------------------------------------------------- adapters against their model


def test_adapters_built_for_another_width_are_named():
    """Rejects running an adapter of another model: it failed deep in a matmul (or, for a
    vector of shape (1,) or (T, d), broadcast silently)."""
    wide = CFG.replace(d_model=16, n_heads=2)
    with pytest.raises(ValueError, match=r"blocks.0.hook_resid_post/D has shape \[2, 16\].*needs \[2, 8\]"):
        A.adapted_forward(PARAMS, A.lowrank(wide, r=2), TOKENS, CFG)
    vector = A.steering_vector(CFG, sites="blocks.0.hook_resid_post")
    site = "blocks.0.hook_resid_post"
    for shape in [(1,), (6, 8)]:
        bad = vector.with_params({site: {"vector": np.ones(shape)}})
        with pytest.raises(ValueError, match=rf"{site}/vector has shape \[{', '.join(map(str, shape))}\]"):
            A.adapted_loss(PARAMS, bad, TOKENS, CFG)
    deeper = CFG.replace(n_layers=3)
    with pytest.raises(ValueError, match="does not fit this model"):
        A.adapted_forward(PARAMS, A.lowrank(deeper, r=2, layers=[2]), TOKENS, CFG)


@pytest.mark.parametrize("build, message", [
    (lambda: A.lora(CFG, r=True), "LoRA rank r must be a positive int, got True"),
    (lambda: A.lora(CFG, r=2.0), "LoRA rank r must be a positive int"),
    (lambda: A.lora(CFG, alpha=None), "LoRA alpha must be a finite nonzero number, got None"),
    (lambda: A.lora(CFG, alpha=float("nan")), "LoRA alpha must be"),
    (lambda: A.lora(CFG, alpha=0), "LoRA alpha must be a finite nonzero"),
    (lambda: A.lora(CFG, alpha="l0"), "LoRA alpha must be"),
    (lambda: A.lora(CFG, rslora="yes"), "rslora must be True or False"),
    (lambda: A.lowrank(CFG, alpha=None), "alpha must be a finite nonzero number"),
    (lambda: A.lowrank(CFG, r=False), "rank r must be a positive int"),
    (lambda: A.lowrank(CFG, positions="f0"), "positions='f0' selects no position"),
    (lambda: A.loreft(CFG, positions="f0+l0"), "selects no position"),
    (lambda: A.steering_vector(CFG, positions="l0"), "selects no position"),
    (lambda: A.lowrank(CFG, init_scale=float("inf")), "init_scale must be a finite number"),
])
def test_adapter_specs_that_cannot_work_are_refused_when_built(build, message):
    """Rejects specs the old checks let through: ``r=True`` (a 1-rank adapter by accident),
    alpha None / 'l0' (failed later inside forward), alpha 0 or NaN (never trains or NaN),
    positions 'f0' (edits nothing)."""
    with pytest.raises(ValueError, match=message):
        build()


def test_adapter_files_that_disagree_with_their_spec_are_refused(tmp_path):
    """Rejects loading ``r=4`` over ``r=2`` arrays (LoRA silently rescaled by alpha/4) and a
    bare ``KeyError`` for a missing array."""
    lora = A.lora(CFG, r=2, targets=["q"])
    lying = A.Adapter({**lora.spec, "r": 4}, lora.params)
    with pytest.raises(ValueError, match="does not carry the spec's rank r=4"):
        save_adapters(tmp_path / "a.safetensors", {"lora": lying})
    save_adapters(tmp_path / "a.safetensors", {"lora": lora})
    from ministeer.io import load_arrays, save_arrays
    arrays, meta = load_arrays(tmp_path / "a.safetensors")
    meta["adapters"]["lora"]["spec"]["r"] = 4  # a file written by another tool, or edited
    save_arrays(tmp_path / "b.safetensors", arrays, meta)
    with pytest.raises(CheckpointError, match="rank r=4"):
        load_adapters(tmp_path / "b.safetensors")
    meta["adapters"]["lora"]["spec"]["r"] = 2
    save_arrays(tmp_path / "c.safetensors", {k: v for k, v in list(arrays.items())[1:]}, meta)
    with pytest.raises(CheckpointError, match="lacks arrays"):
        load_adapters(tmp_path / "c.safetensors")
    wide = CFG.replace(d_model=16)
    with pytest.raises(CheckpointError, match="has shape"):
        load_adapters(tmp_path / "a.safetensors", cfg=wide)

# ---------------------------------------------------------------- resume, bitwise, for every method


class _Killed(Exception):
    pass


def _batches(step):
    rng = np.random.default_rng(step)
    prompt = rng.integers(0, CFG.vocab_size, (4, 3))
    return {"tokens": np.concatenate([prompt, prompt], axis=1),
            "mask": np.concatenate([np.zeros((4, 3)), np.ones((4, 3))], axis=1)}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(A.METHODS))
@settings(max_examples=2)
@given(kill_after=st.integers(1, 4))
def test_a_run_killed_at_any_step_resumes_bitwise(method, kill_after):
    """Rejects a resume that restarts Adam's moments, the schedule, the data order, the joint
    projection's step or the per-step random draws (JoLA's gates): the resumed run must equal
    the uninterrupted one bit for bit."""
    options = dict(steps=5, lr=1e-2, seed=1, schedule="cosine", clip=1.0, weight_decay=0.01)
    if A.METHODS[method].train is not None:  # staged training of its own (LoFiT): refused, not half-done
        with pytest.raises(ValueError, match="not supported"):
            A.train_method(method, PARAMS, CFG, _batches, checkpoint_dir="unused", **options)
        return
    straight, result = A.train_method(method, PARAMS, CFG, _batches, **options)
    def kill(step, loss, trainable):
        if step + 1 == kill_after:
            raise _Killed
    with tempfile.TemporaryDirectory() as folder:
        with pytest.raises(_Killed):
            A.train_method(method, PARAMS, CFG, _batches, checkpoint_dir=folder, checkpoint_every=1,
                           callback=kill, **options)
        resumed, again = A.train_method(method, PARAMS, CFG, _batches, checkpoint_dir=folder, resume=True,
                                        **options)
    assert again.losses == result.losses
    for name in straight:
        assert same_tree(resumed[name].params, straight[name].params), name

# ---------------------------------------------------------------- fuzz: hostile inputs
# Each fuzz test sorts its input with an oracle written from the documentation, not from the code.

ALLOWED = (ValueError, TypeError, KeyError)
FUZZ = int(os.environ.get("MINISTEER_FUZZ_EXAMPLES", 60))  # ~8 s in all; raise it for a long local run


def _refused(call, *words):
    """``call()`` must raise an allowed error whose message names one of ``words``."""
    with pytest.raises(ALLOWED) as err:
        call()
    message = str(err.value).lower()
    assert any(w.lower() in message for w in words), f"{type(err.value).__name__}: {message!r} names none of {words}"


token_arrays = st.one_of(
    st.builds(lambda shape, low, high, dtype, seed: np.random.default_rng(seed).integers(low, high, shape)
              .astype(dtype),
              st.lists(st.integers(0, 10), min_size=0, max_size=3).map(tuple), st.integers(-3, 11),
              st.integers(12, 14), st.sampled_from(["int64", "int32", "uint8", "float64", "bool"]), st.integers(0, 9)),
    st.lists(st.lists(st.integers(-2, 13), min_size=1, max_size=9), min_size=1, max_size=2))


def _tokens_valid(tokens):
    if isinstance(tokens, list) and len({len(row) for row in tokens}) > 1:
        return False  # ragged rows
    a = np.asarray(tokens)
    if a.dtype.kind not in "iu" or a.ndim not in (1, 2) or a.shape[-1] == 0 or a.shape[-1] > CFG.n_ctx:
        return False
    return a.size == 0 or (a.min() >= 0 and a.max() < CFG.vocab_size)


@settings(max_examples=FUZZ)
@given(tokens=token_arrays)
def test_fuzz_token_arrays(tokens):
    """Valid token arrays give the logits of each row computed alone; every other array is an
    error naming tokens, their dtype, shape, context length or id range."""
    if not _tokens_valid(tokens) or np.asarray(tokens).size == 0:
        _refused(lambda: forward(PARAMS, tokens, CFG), "token", "integers", "shape", "n_ctx", "[0,")
        return
    rows = np.asarray(tokens).reshape(-1, np.asarray(tokens).shape[-1])
    logits = np.asarray(forward(PARAMS, tokens, CFG))
    assert logits.shape == rows.shape + (CFG.vocab_size,) and np.isfinite(logits).all()
    np.testing.assert_allclose(logits[-1], np.asarray(forward(PARAMS, rows[-1], CFG))[0], rtol=1e-12, atol=1e-12)


FIELD_VALUES = {  # (valid values, invalid values)
    "r": ([1, 2], [0, -1, True, 2.5, "2", None]),
    "alpha": ([1.0, 2, -0.5], [0, 0.0, float("nan"), float("inf"), None, "l0", True]),
    "positions": ([None, "last", "f1+l1", "l2", [0, 2]], ["f0", "l0", "f0+l0", "x1", "", [], [1.5], True]),
    "sites": (["post_block", "blocks.0.hook_resid_post"], ["blocks.9.hook_resid_post", "nowhere", "blocks.*.nope"]),
}
KIND_FIELDS = {"lowrank": ("r", "alpha", "positions", "sites"), "loreft": ("r", "positions", "sites"),
               "direft": ("r", "positions", "sites"), "vector": ("positions", "sites"), "lora": ("r", "alpha")}


@st.composite
def adapter_fields(draw):
    kind = draw(st.sampled_from(sorted(KIND_FIELDS)))
    fields, bad = {}, []
    for name in KIND_FIELDS[kind]:
        valid, invalid = FIELD_VALUES[name]
        if draw(st.booleans()) and draw(st.integers(0, 2)) == 0:
            fields[name] = draw(st.sampled_from(invalid))
            bad.append(name)
        else:
            fields[name] = draw(st.sampled_from(valid))
    return kind, fields, bad


@settings(max_examples=FUZZ)
@given(case=adapter_fields())
def test_fuzz_adapter_specs(case):
    """A spec with a bad field is refused when built, naming a bad field (or the site/position
    it names); a good spec builds an adapter that is an exact no-op at init and fits its model."""
    kind, fields, bad = case
    build = lambda: A.init_adapter(CFG, A.make_spec(CFG, kind, **fields))
    if bad:
        words = [{"r": "rank", "alpha": "alpha", "positions": "position", "sites": "site"}[b] for b in bad]
        _refused(build, *words, "blocks", "layer")
        return
    adapter = build()
    assert np.array_equal(A.adapted_forward(PARAMS, adapter, TOKENS, CFG), forward(PARAMS, TOKENS, CFG))


CONFIG_VALUES = {  # field: (valid values, invalid values)
    "vocab_size": ([5, 64], [0, -3, True, 2.0, "64", None]),
    "n_layers": ([1, 3], [0, False, 1.5]),
    "norm_eps": ([1e-6, 1], [0.0, -1e-5, float("nan"), float("inf"), None, "1e-5", True]),
    "rope_theta": ([10.0, 10000], [0, -1.0, float("nan"), None]),
    "norm": (["rms", "layer"], ["batch", "", None, 1]),
    "dtype": (["float32", "float64"], ["float16", "bfloat16", None]),
    "bias": ([True, False], [1, "yes", None]),
    "tied": ([True, False], [0, "no"]),
}


@settings(max_examples=FUZZ)
@given(data=st.data())
def test_fuzz_configs(data):
    """Any invalid field is refused at construction with a message naming that field; valid
    configs build and run."""
    fields, bad = {}, []
    for name in data.draw(st.lists(st.sampled_from(sorted(CONFIG_VALUES)), max_size=3, unique=True)):
        valid, invalid = CONFIG_VALUES[name]
        use_bad = data.draw(st.booleans())
        fields[name] = data.draw(st.sampled_from(invalid if use_bad else valid))
        bad += [name] * use_bad
    make = lambda: Config.llama(d_model=8, n_heads=2, n_kv_heads=1, d_mlp=8, n_ctx=8, **fields)
    if bad:
        _refused(make, *bad)
        return
    cfg = make()
    logits = forward(init_params(cfg), np.array([[0, 1, 2]]) % cfg.vocab_size, cfg)
    assert np.isfinite(np.asarray(logits)).all()


def _mutate(data, how, where, value):
    i = int(where * len(data))
    if how == "flip":
        return data[:i] + bytes([data[i] ^ (1 << (value % 8))]) + data[i + 1:] if i < len(data) else data
    if how == "cut":
        return data[:i]
    if how == "insert":
        return data[:i] + bytes([value]) + data[i:]
    return data[:i] + bytes([value]) * 8 + data[i + 8:]  # overwrite 8 bytes


@settings(max_examples=FUZZ)
@given(suffix=st.sampled_from([".safetensors", ".npz"]), how=st.sampled_from(["flip", "cut", "insert", "overwrite"]),
       where=st.floats(0, 1, exclude_max=True), value=st.integers(0, 255))
def test_fuzz_checkpoint_bytes(suffix, how, where, value):
    """A damaged checkpoint is a ``CheckpointError``, or, if the damage hit bytes nobody reads,
    loads as exactly what was saved: never another model."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("m" + suffix)
        save_model(path, PARAMS, CFG)
        path.write_bytes(_mutate(path.read_bytes(), how, where, value))
        try:
            params, cfg = load_model(path)
        except CheckpointError as err:
            assert str(path) in str(err) or "m" + suffix in str(err)
            return
    assert cfg == CFG and same_tree(params, PARAMS)


@settings(max_examples=FUZZ // 2)
@given(mask=st.one_of(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=7),
                      st.lists(st.integers(-1, 2), min_size=1, max_size=7)))
def test_fuzz_loss_masks(mask):
    """A mask is a weight >= 0 per token, not all 0 after the shift, of the tokens' shape;
    a valid one gives the weighted mean of the per-token losses."""
    tokens = np.array([[1, 2, 3, 4, 5, 6]])
    m = np.asarray([mask], dtype=float)
    valid = m.shape == tokens.shape and np.isfinite(m).all() and (m >= 0).all() and m[:, 1:].sum() > 0
    if not valid:
        _refused(lambda: loss_fn(PARAMS, tokens, CFG, mask=[mask]), "mask")
        return
    each = [float(loss_fn(PARAMS, tokens, CFG, mask=np.eye(6)[[t]])) for t in range(1, 6) if m[0, t] > 0]
    weights = [m[0, t] for t in range(1, 6) if m[0, t] > 0]
    expected = sum(w * l for w, l in zip(weights, each)) / sum(weights)
    assert math.isclose(float(loss_fn(PARAMS, tokens, CFG, mask=[mask])), expected, rel_tol=1e-9)

# ---------------------------------------------------------------- the command line: one line, exit 2


@pytest.mark.parametrize("argv, words", [
    (["verify", "--model", "/no/such/model"], "no such folder"),
    (["verify", "--json", "/etc/hostname/x.json", "--claims", "1"], "cannot write in"),
    (["bench", "--configs", "c9"], "unknown config ['c9']"),
    (["bench", "--repeats", "0"], "--repeats: expected a positive integer, got 0"),
    (["bench", "--threads", "-2"], "--threads"),
    (["bench", "--composed", "nothing"], "--composed: unknown primitive ['nothing']"),
    (["exercises", "/no/such/answers.py"], "no answers to grade at '/no/such/answers.py'"),
    (["exercises", "--only", "9.9"], "invalid choice: '9.9'"),
    (["sites", "--preset", "bert"], "invalid choice: 'bert'"),
])
def test_user_errors_are_one_line_and_exit_2(argv, words, capsys, monkeypatch):
    """Rejects a traceback (or argparse's usage block) for a typo, and finding a bad path only
    after the work is done. ``bench`` re-executes itself without OpenBLAS's slow-kernel variables:
    a value checked only after that step replaced the caller's process (here, pytest's)."""
    from ministeer.cli import main
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("MINISTEER_BENCH_REEXEC", raising=False)
    monkeypatch.setattr("os.execve", lambda *a: pytest.fail(f"re-executed before checking its arguments: {a[1]}"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ministeer {argv[0]}: ") and words in err, err


def test_verify_json_dash_writes_to_stdout(capsys, tmp_path, monkeypatch):
    """Rejects ``open('-')``, which wrote a file named '-'."""
    import json
    from ministeer.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "--claims", "1", "--json", "-"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("\n{") + 1:])["passed"] is True
    assert not (tmp_path / "-").exists()


def test_outputs_are_checked_before_any_work():
    """The shared check the experiments use (``ministeer.usage.check_writable``): nothing is created."""
    from ministeer.usage import UsageError, check_writable
    with tempfile.TemporaryDirectory() as folder:
        check_writable(f"{folder}/new/sub/out.npz", "--out", suffixes=(".npz",))
        assert list(Path(folder).iterdir()) == []
        with pytest.raises(UsageError, match=r"--out .*expected a file ending in \.npz"):
            check_writable(f"{folder}/base", "--out", suffixes=(".npz",))
        with pytest.raises(UsageError, match="is a folder"):
            check_writable(folder, "--out")
