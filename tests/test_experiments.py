"""The shipped base model, ``ministeer compare --quick`` end to end, and ``analyze --quick``.

These check structure and that training happened; they deliberately do NOT assert the
paper's orderings (which method beats which) -- docs/results.md reports those as measured.
"""
import json
from dataclasses import asdict

import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.cli import COMMANDS
from ministeer.experiments import compare
from ministeer.experiments.pretrain import (BASE_CONFIG, CARD_PATH, fingerprint, load_base, load_card,
                                           pretrain, probe_logits)
from ministeer.tasks import TASK_NAMES


def test_shipped_checkpoint_matches_its_card():
    params, cfg = load_base()
    card = load_card()
    assert asdict(cfg) == card["config"] == asdict(BASE_CONFIG)
    assert fingerprint(params) == card["sha256"]
    # the card stores the probe logits rounded to 4 decimals
    np.testing.assert_allclose(probe_logits(params, cfg), card["probe_logits"], atol=6e-5, rtol=0)
    assert card["code_version"] != "unknown" and card["command"].startswith("ministeer pretrain")
    assert CARD_PATH.with_suffix(".npz").stat().st_size < 4_000_000


def test_pretraining_is_reproducible_from_its_seeds():
    small = dict(steps=3, batch_size=4, per_task_format=20, warmup=1)
    (a, ra), (b, rb) = pretrain(progress=False, **small), pretrain(progress=False, **small)
    assert fingerprint(a) == fingerprint(b) and ra.losses == rb.losses
    assert fingerprint(a) != fingerprint(pretrain(progress=False, **{**small, "init_seed": 1})[0])


def test_stored_learning_rates_cover_every_method_and_task_from_their_grids():
    lrs = compare.load_lrs()
    for method in compare.METHODS:
        for task in TASK_NAMES:
            assert compare.lookup_lr(lrs, method, task) in A.METHODS[method].lr_grid
    with pytest.raises(KeyError, match="--sweep"):
        compare.lookup_lr(lrs, "nonexistent", "gsm")


def test_commands_are_registered():
    assert {"pretrain", "compare", "analyze"} <= set(COMMANDS)


@pytest.mark.slow
def test_compare_quick_end_to_end(tmp_path):
    compare.main(["--quick", "--out", str(tmp_path), "--jobs", "2"])  # the default, multi-process path
    result = json.loads((tmp_path / "results.json").read_text())
    runs, summary = result["runs"], result["summary"]
    assert len(runs) == len(compare.METHODS) * len(TASK_NAMES)  # quick: one seed
    for r in runs:  # every method trained: no divergence, and the loss on a fixed training batch fell
        assert r["accuracy"] is not None and 0.0 <= r["accuracy"] <= 1.0, r
        assert r["loss_after"] < r["loss_before"], r
    table = (tmp_path / "table.md").read_text().splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["Method", "Params", *TASK_NAMES, "Avg", "Gap to FT"]
    rows = [line for line in table[2:] if line.startswith("|")]
    assert len(rows) == len(compare.METHODS) + 1  # + the unadapted base model
    assert all(len(r.strip("|").split("|")) == len(header) for r in rows)
    assert set(summary) == set(compare.METHODS) | {"base"}
    assert summary["full"]["percent"] == pytest.approx(100.0)
    assert 0 < summary["postblock_vector"]["percent"] < summary["postblock_silu"]["percent"] < summary["lora"]["percent"]
    pytest.importorskip("matplotlib")
    for name in ("accuracy_vs_params", "site_ablation", "joint_vs_single"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 1000


@pytest.mark.slow
def test_analyze_quick_end_to_end(tmp_path):
    from ministeer.experiments import analyze
    analyze.main(["--quick", "--out", str(tmp_path), "--no-figures"])
    (r,) = json.loads((tmp_path / "analysis.json").read_text())
    assert len(r["mlp_share"]) == BASE_CONFIG.n_layers and all(s >= 0 for s in r["mlp_share"])
    kl = r["kl"]
    # the exact oracle reproduces the fine-tuned model (float32 rounding only); the unsteered base does not
    assert kl["oracle (exact)"] < 1e-6 < kl["base (no steer)"]
    for spec in r["spectrum"].values():
        s = spec["singular_values"]
        assert s == sorted(s, reverse=True) and 1 <= spec["rank90"] <= spec["rank99"] <= BASE_CONFIG.d_model
