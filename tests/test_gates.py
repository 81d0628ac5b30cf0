"""The base model's gates (``experiments/gates.py``) one by one, without the shipped checkpoint:
the thresholds and the direction of each comparison at its boundary, where the probe reads
(the ``<sep>`` token), that it takes the best layer, and which split and scoring each gate uses.
Each test names the wrong implementation it rejects (and its mutant in scripts/mutants.py)."""
import numpy as np
import pytest

from ministeer.experiments import gates
from ministeer.model import Config, init_params, run_with_cache
from ministeer.tasks import BENCHMARK, PRETRAINED, encode, examples
from ministeer.tasks.tokenizer import TOKENIZER


def row(seen_mean=0.95, held_out_official=0.2, held_out_exact=0.1, probe_held_out=0.8, probe_seen_mean=0.85):
    return dict(seen_mean=seen_mean, held_out_official=held_out_official, held_out_exact=held_out_exact,
                probe_held_out=probe_held_out, probe_seen_mean=probe_seen_mean)


def test_the_thresholds_are_the_documented_ones():
    """seen >= 90%, held-out official > 0%, headroom >= 30 points, probe within 10 points (the module
    docstring and the card's ``thresholds``). Rejects a threshold changed without the docs
    (mutants ``gate_seen_min``, ``gate_probe_gap``)."""
    assert gates.THRESHOLDS == dict(seen_min=0.90, held_out_above=0.0, headroom_min=0.30, probe_gap_max=0.10)
    assert (gates.SEEN_MIN, gates.HELD_OUT_MIN, gates.HEADROOM_MIN, gates.PROBE_GAP_MAX) == (0.90, 0.0, 0.30, 0.10)


def test_every_gate_passes_at_its_boundary_and_fails_just_past_it():
    """Each comparison's direction and strictness, one gate at a time (the others pass throughout).
    Rejects a strict seen gate (90.0% would fail), a held-out gate that passes at 0% (>= instead of
    >), an inverted headroom or probe gate (mutant ``gate_probe_sign``), and a gate that reads
    another number than its own."""
    ok = gates.verdicts(row())
    assert ok == dict(seen=True, held_out=True, headroom=True, probe=True)
    cases = {
        "seen": ({"seen_mean": 0.90}, {"seen_mean": 0.8999}),
        "held_out": ({"held_out_official": 0.001}, {"held_out_official": 0.0}),
        "headroom": ({"held_out_exact": 0.95 - 0.30 - 1e-9}, {"held_out_exact": 0.95 - 0.30 + 1e-3}),
        "probe": ({"probe_held_out": 0.85 - 0.10 + 1e-9}, {"probe_held_out": 0.85 - 0.10 - 1e-3}),
    }
    for gate, (passing, failing) in cases.items():
        assert gates.verdicts(row(**passing)) == ok, gate
        assert gates.verdicts(row(**failing)) == {**ok, gate: False}, gate


CFG = Config.llama(vocab_size=TOKENIZER.vocab_size, d_model=8, n_heads=2, n_kv_heads=1, d_mlp=16, n_layers=2,
                   n_ctx=128)


def test_the_probe_reads_the_residual_stream_at_each_prompts_sep_token():
    """``last_prompt_features`` [L, N, d] is ``hook_resid_post`` of each layer at the position of
    ``<sep>``, the last prompt token, in each (right-padded, ragged) row. Rejects reading the
    token before it (mutant ``probe_before_sep``) or after it (the first answer token, which the
    model has not computed from the prompt alone)."""
    params = init_params(CFG, 0, std=0.3)
    exs = examples("gsm", "test", 6, seed=1, fmt=4)
    assert len({len(e.prompt) for e in exs}) > 1  # ragged, so one fixed column would not do
    feats = gates.last_prompt_features(params, CFG, exs)
    tokens = encode(exs)["tokens"]
    _, cache = run_with_cache(params, tokens, CFG, names="blocks.*.hook_resid_post")
    assert feats.shape == (CFG.n_layers, len(exs), CFG.d_model)
    for i in range(len(exs)):
        (sep,) = np.nonzero(tokens[i] == TOKENIZER.sep_id)[0]
        for l in range(CFG.n_layers):
            np.testing.assert_array_equal(feats[l, i], np.asarray(cache[f"blocks.{l}.hook_resid_post"])[i, sep])


def test_the_probe_takes_its_best_layer(monkeypatch):
    """The label is linearly readable at layer 0 only (layer 1 is noise): the probe's accuracy is
    layer 0's. Rejects a probe of the last layer only (mutant ``probe_last_layer``)."""
    rng = np.random.default_rng(0)

    def features(params, cfg, exs):
        labels = np.array([e.label for e in exs], dtype=float)
        informative = np.stack([labels, rng.normal(size=len(exs))], axis=1)
        return np.stack([informative, rng.normal(size=(len(exs), 2))])  # [L=2, N, d=2]
    monkeypatch.setattr(gates, "last_prompt_features", features)
    cfg = Config.llama(vocab_size=8, d_model=4, n_heads=2, n_kv_heads=1, d_mlp=8, n_layers=2, n_ctx=8)
    assert gates.probe_accuracy(None, cfg, "boolq", BENCHMARK, 200, 100) == 1.0


def test_each_gate_scores_its_own_split_and_rule(monkeypatch):
    """Pretrained pairs on the validation split, formats 0 and the benchmark on the test split, all
    forced exact match; the held-out gate scores the benchmark's test draw with the official
    answer extraction. Rejects the pretrained pairs scored on the test split (mutant
    ``seen_on_test``) and a held-out gate under exact match (mutant ``held_out_exact_match``)."""
    calls = []

    def accuracy(fn, exs, **kw):
        calls.append((exs, kw))
        return 0.5
    monkeypatch.setattr(gates, "accuracy", accuracy)
    monkeypatch.setattr(gates, "probe_accuracy", lambda *a, **k: 0.7)
    out = gates.evaluate_gates(None, CFG, n_acc=3, n_probe_train=2, n_probe_test=2, tasks=("gsm",))["gsm"]
    expected = {f: examples("gsm", "val" if f in PRETRAINED else "test", 3, seed=0, fmt=f)
                for f in (0, *PRETRAINED, BENCHMARK)}
    forced = [exs for exs, kw in calls if kw.get("forced")]
    assert forced == [expected[f] for f in (0, *PRETRAINED, BENCHMARK)]
    (official,) = [(exs, kw) for exs, kw in calls if not kw.get("forced")]
    assert official[1].get("match") == "official" and official[0] == examples("gsm", "test", 3, fmt=BENCHMARK)
    assert out["pass"] == gates.verdicts(out)


def test_each_gate_reads_its_own_numbers(monkeypatch):
    """Scores that differ per format (forced accuracy 0.01 * fmt + 0.5, probe 0.02 * fmt + 0.3,
    official 0.123): the seen mean and minimum are over the pretrained pairs only, the held-out
    exact match is the benchmark's, the probe's seen mean is over the pretrained pairs only and its
    held-out value the benchmark's; format 0 is recorded, never averaged in. Rejects the seen or the
    probe mean taken over the benchmark too (mutants ``seen_mean_with_benchmark``,
    ``probe_mean_with_benchmark``) and the held-out number read from format 0
    (``held_out_reads_format_0``)."""
    def accuracy(fn, exs, **kw):
        return 0.01 * exs[0].fmt + 0.5 if kw.get("forced") else 0.123
    monkeypatch.setattr(gates, "accuracy", accuracy)
    monkeypatch.setattr(gates, "probe_accuracy", lambda params, cfg, task, fmt, *a: 0.02 * fmt + 0.3)
    out = gates.evaluate_gates(None, CFG, n_acc=2, n_probe_train=2, n_probe_test=2, tasks=("boolq",))["boolq"]
    seen = [0.01 * f + 0.5 for f in PRETRAINED]
    assert out["seen_mean"] == pytest.approx(np.mean(seen), abs=1e-15) and out["seen_min"] == min(seen)
    assert out["held_out_exact"] == 0.01 * BENCHMARK + 0.5 and out["held_out_official"] == 0.123
    assert out["accuracy"]["0"] == 0.5
    assert out["probe_seen_mean"] == pytest.approx(np.mean([0.02 * f + 0.3 for f in PRETRAINED]), abs=1e-15)
    assert out["probe_held_out"] == 0.02 * BENCHMARK + 0.3
    assert set(out["probe"]) == {str(f) for f in (*PRETRAINED, BENCHMARK)}


def test_a_probes_verdict_on_a_row_does_not_depend_on_the_other_test_rows():
    """The probe is a function fitted on the training rows (standardized with *their* statistics):
    scoring the test rows one at a time gives the same accuracy as scoring them together, even when
    the test rows are shifted. Rejects standardizing the test rows with their own statistics
    (mutant ``probe_test_statistics``), which would also hide a shift the probe should see."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.stack([y + 0.3 * rng.normal(size=200), rng.normal(size=200)], axis=1)
    y_test = rng.integers(0, 2, 40)
    x_test = np.stack([y_test + 0.3 * rng.normal(size=40) + 0.4, rng.normal(size=40)], axis=1)
    together = gates.ridge_probe_accuracy(x, y, x_test, y_test)
    alone = np.mean([gates.ridge_probe_accuracy(x, y, x_test[i:i + 1], y_test[i:i + 1]) for i in range(40)])
    assert together == alone and 0.5 < together < 1.0
