"""``ministeer verify``: exit code, table and JSON, and that a broken claim is caught."""
import dataclasses
import json

import pytest

from ministeer import cli, verify

from ministeer.theory import claims
from ministeer.theory import glu
from ministeer.theory.claims import CLAIMS


def test_verify_passes_on_random_models_and_writes_json(tmp_path, capsys):
    out = tmp_path / "verify.json"
    assert cli.main(["verify", "--seed", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| claim | statement |" in printed and "FAIL" not in printed
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["failed_claims"] == [] and report["seed"] == 3
    assert {r["claim"] for r in report["rows"]} == set(CLAIMS)
    for row in report["rows"]:
        assert set(row) == {"claim", "statement", "source", "fails_if", "model", "figure", "value", "passed", "seconds"}
        assert row["source"] and row["fails_if"]
        assert row["passed"] is True and isinstance(row["value"], float)
    assert "What would make each claim fail" in printed and "- claim 11:" in printed


def test_verify_is_reproducible():
    first = verify.verify(seed=5, claims=[2, 10, 15])
    again = verify.verify(seed=5, claims=[2, 10, 15])
    assert [r["value"] for r in first] == [r["value"] for r in again]


def test_a_broken_closed_form_makes_verify_fail(monkeypatch, tmp_path, capsys):
    """Drop the gated path from dy_FT (a plausible mistake): claim 2 must fail, exit code 1."""
    real = glu.weight_update_shift
    def broken(p, dp, x, cfg):
        return real(p, {k: v for k, v in dp.items() if k != "gate_proj"}, x, cfg) if cfg.mlp == "swiglu" \
            else 1.01 * real(p, dp, x, cfg)
    monkeypatch.setattr(glu, "weight_update_shift", broken)
    out = tmp_path / "v.json"
    assert verify.main(["--claims", "1", "2", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["failed_claims"] == [2]
    assert "FAIL" in capsys.readouterr().out


def test_a_crashing_claim_is_a_failure_not_a_crash(monkeypatch):
    def boom(model):
        raise ZeroDivisionError("deliberate")
    monkeypatch.setitem(CLAIMS, 7, dataclasses.replace(CLAIMS[7], runner=boom))
    rows = verify.verify(claims=[7])
    assert rows and not any(r["passed"] for r in rows)
    assert all("ZeroDivisionError" in r["figure"] and r["value"] is None for r in rows)


def test_missing_checkpoint_folder_is_a_clear_error(tmp_path):
    with pytest.raises(Exception) as info:
        verify.main(["--model", str(tmp_path / "nowhere"), "--claims", "1"])
    assert "nowhere" in str(info.value)


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
def test_verify_runs_on_a_saved_checkpoint(tmp_path, preset):
    from ministeer.io.hf import save_pretrained
    model = claims.random_model(preset, 11)
    save_pretrained(tmp_path / "ckpt", model.params, model.cfg)
    rows = verify.verify(seed=2, model_dir=str(tmp_path / "ckpt"), claims=[1, 4, 10, 15])
    mine = [r for r in rows if r["model"].startswith("checkpoint")]
    assert [r["claim"] for r in mine] == [1, 4, 10, 15]
    assert all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
