"""The shipped base model and its gates, ``pretrain``'s safety, ``compare`` (quick run, resume,
Ctrl-C, reproducibility, the table) and ``analyze --quick``.

These check structure, safety and that training happened; they deliberately do NOT assert the
paper's orderings (which method beats which) -- docs/results.md reports those as measured.
"""
import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, replace

import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.cli import COMMANDS
from ministeer.experiments import compare, gates, pool, pretrain, rates, report, stats
from ministeer.experiments.grids import grid_of
from ministeer.io import CheckpointError
from ministeer.experiments.pretrain import BASE_CONFIG, BASE_PATH, CARD_PATH, fingerprint, load_base, load_card
from ministeer.tasks import TASK_NAMES
from ministeer.usage import UsageError

TINY = replace(compare.Settings(), steps=2, n_train=16, n_val=4, n_test=4, seeds=(0,))


def test_shipped_checkpoint_matches_its_card():
    params, cfg = load_base()
    card = load_card()
    assert asdict(cfg) == card["config"] == asdict(BASE_CONFIG)
    assert fingerprint(params) == card["sha256"]
    # the card stores the probe logits rounded to 4 decimals
    np.testing.assert_allclose(pretrain.probe_logits(params, cfg), card["probe_logits"], atol=6e-5, rtol=0)
    assert card["code_version"] != "unknown" and card["command"].startswith("ministeer pretrain")
    assert BASE_PATH.stat().st_size < 4_000_000


# Tasks whose "seen pairs >= 90%" gate the shipped base misses, with the card's seen-pair mean.
# The two gate tests below enforce every gate of every other task, and for these tasks every gate
# but that one; they fail the day such a task passes, so that this table (and docs/results.md,
# which reads the numbers) is updated rather than left stale.
MISSED_SEEN = {}  # v3 missed BoolQ's (60.0%, the passage lookup not learned); v4 passes every gate


def _check_gates(verdicts, where):
    for task, ok in verdicts.items():
        expected = {gate: not (gate == "seen" and task in MISSED_SEEN) for gate in ok}
        assert ok == expected, (f"{where}: {task} gates {ok}, expected {expected}"
                                + (f" (MISSED_SEEN says it misses seen pairs: {MISSED_SEEN[task]})"
                                   if task in MISSED_SEEN else ""))


def test_the_card_records_which_gates_passed():
    """Rejects a base shipped although a gate failed (or without its gates), beyond the documented misses."""
    recorded = load_card()["gates"]
    assert recorded["thresholds"] == dict(seen_min=0.9, held_out_above=0.0, headroom_min=0.3, probe_gap_max=0.1)
    assert recorded["benchmark_format"] == 9
    _check_gates({t: g["pass"] for t, g in recorded["tasks"].items()}, "the card")
    assert recorded["all_pass"] == (not MISSED_SEEN)


@pytest.mark.slow
def test_shipped_base_passes_its_gates():
    """Recomputed here with the card's sizes: seen pairs >= 90%, the held-out pair answered
    zero-shot (> 0% under the official extraction) but at least 30 points below the seen pairs
    in its own format, and the held-out probe within 10 points of the seen ones, on every task
    (but the documented misses). Rejects a base pretrained too briefly (seen pairs fail), one
    that saw the benchmark style (no headroom) and a benchmark the base cannot read (probe).
    Two of v4's passes are narrow, so smaller samples would flip them: BoolQ's held-out pair is
    answered on 1 of 100 items (the base says yes/no; the official rule reads only true/false)
    and GSM's probe gap is 7.5 points (docs/results.md)."""
    params, cfg = load_base()
    measured = gates.evaluate_gates(params, cfg, **gates.FULL)
    _check_gates({t: g["pass"] for t, g in measured.items()}, "recomputed")


def test_the_card_records_the_gates_it_measured():
    """The card holds every gate's numbers and verdicts, and the verdicts follow from the numbers."""
    recorded = load_card()["gates"]
    assert set(recorded["tasks"]) == set(TASK_NAMES)
    for g in recorded["tasks"].values():
        assert g["pass"] == dict(seen=g["seen_mean"] >= 0.9, held_out=g["held_out_official"] > 0.0,
                                 headroom=g["held_out_exact"] <= g["seen_mean"] - 0.3,
                                 probe=g["probe_held_out"] >= g["probe_seen_mean"] - 0.1)
        assert g["held_out_exact"] == g["accuracy"]["9"] and g["probe_held_out"] == g["probe"]["9"]
        assert len(g["accuracy"]) == 10 and len(g["probe"]) == 9  # formats 0..9; probes on the gated 1..9
    assert recorded["all_pass"] == all(all(g["pass"].values()) for g in recorded["tasks"].values())


def test_ridge_probe_reads_a_linear_label_and_not_noise():
    """Rejects a probe that ignores its features (chance on the first set) or one that leaks the
    test labels (above chance on the second, where the features carry no label)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8))
    y = (x @ rng.normal(size=8) > 0).astype(int) + 2 * (x[:, 0] > 1)
    assert gates.ridge_probe_accuracy(x[:400], y[:400], x[400:], y[400:]) > 0.8
    noise = rng.integers(0, 4, 600)
    assert gates.ridge_probe_accuracy(x[:400], noise[:400], x[400:], noise[400:]) < 0.4


def test_pretraining_is_reproducible_from_its_seeds():
    small = dict(steps=3, batch_size=4, per_task_format=20, warmup=1)
    (a, ra), (b, rb) = pretrain.pretrain(progress=False, **small), pretrain.pretrain(progress=False, **small)
    assert fingerprint(a) == fingerprint(b) and ra.losses == rb.losses
    assert fingerprint(a) != fingerprint(pretrain.pretrain(progress=False, **{**small, "init_seed": 1})[0])


def test_pretrain_writes_under_runs_and_never_into_the_package(tmp_path, monkeypatch, capsys):
    """Rejects a default --out inside the package (the shipped base would be overwritten)."""
    before = {p: p.read_bytes() for p in (BASE_PATH, CARD_PATH)}
    monkeypatch.chdir(tmp_path)
    pretrain.main(["--steps", "2", "--warmup", "5", "--per-task-format", "4", "--batch-size", "4",
                   "--save-every", "1", "--no-gates"])
    assert (tmp_path / "runs/pretrain/base.npz").exists() and (tmp_path / "runs/pretrain/base.json").exists()
    assert list((tmp_path / "runs/pretrain/checkpoints").glob("step-*"))  # fit's training-state checkpoints
    assert {p: p.read_bytes() for p in before} == before
    out = capsys.readouterr()
    assert "warmup (5) exceeds steps (2)" in out.err
    assert "mean of last 2 steps" in out.out and "probe_logits" not in out.out  # a summary, not the card


def test_an_interrupted_pretraining_resumes_bitwise(tmp_path):
    """Killed after its step-2 checkpoint and started again with the same folder, pretraining ends
    bitwise where the uninterrupted run does, and trains only the steps that were left. Rejects a
    restart from scratch (it would end equal too, but redo every step) and a resume that loses
    the Adam moments or the schedule position."""
    small = dict(steps=4, batch_size=4, per_task_format=20, warmup=1)
    whole, _ = pretrain.pretrain(progress=False, checkpoint_dir=tmp_path / "a", save_every=2, **small)

    def crash(step, loss, trainable):
        if step == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        pretrain.pretrain(progress=False, callback=crash, checkpoint_dir=tmp_path / "b", save_every=2, **small)
    steps_run = []
    resumed, _ = pretrain.pretrain(progress=False, checkpoint_dir=tmp_path / "b", save_every=2,
                                   callback=lambda step, loss, trainable: steps_run.append(step), **small)
    assert fingerprint(resumed) == fingerprint(whole)
    assert steps_run == [2, 3]


def test_pretrain_rejects_a_bad_out_before_training(tmp_path):
    with pytest.raises(UsageError, match="expected a file ending in .npz"):
        pretrain.main(["--out", str(tmp_path / "base")])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        pretrain.main(["--out", str(blocker / "sub" / "base.npz")])


def test_task_weights_set_each_tasks_share_of_the_pretraining_mixture(capsys):
    weights = pretrain.task_weights("boolq=6")
    assert weights == {**pretrain.TASK_WEIGHTS, "boolq": 6.0}
    counts = lambda w: Counter(e.task for e in pretrain.mixture(0, 10, w))
    assert counts(weights)["boolq"] == 8 * 60 and counts(weights)["gsm"] == counts(pretrain.TASK_WEIGHTS)["gsm"]
    assert counts(pretrain.task_weights("gsm=0"))["gsm"] == 0  # 0 leaves a task out
    for bad, message in (("bq=2", "unknown task 'bq'"), ("boolq=x", "expected TASK=NUMBER"), ("gsm=-1", "positive"),
                         ("listops=0,boolq=0,winogrande=0,gsm=0", "leaves every task out")):
        with pytest.raises(UsageError, match=message):
            pretrain.main(["--task-weights", bad])


def test_stored_learning_rates_cover_every_method_and_task_from_their_grids():
    lrs = rates.load_lrs()
    for method in A.METHODS:
        for task in TASK_NAMES:
            assert rates.lookup_lr(lrs, method, task) in grid_of(method)
    with pytest.raises(KeyError, match="--sweep"):
        rates.lookup_lr(lrs, "nonexistent", "gsm")


def test_commands_are_registered():
    assert {"pretrain", "compare", "analyze"} <= set(COMMANDS)


def test_the_headline_and_all_tiers_come_from_the_registry():
    assert set(compare.HEADLINE) <= set(A.METHODS) and compare.EVERYTHING == tuple(A.METHODS)
    assert {"lora_r1", "postblock_r1", "postblock_r2", "postblock_r4", "postblock_silu"} <= set(A.METHODS)


# ---------------------------------------------------------------- compare: runs, log, resume


def test_a_run_is_reproducible_bitwise():
    """The same seed gives the same record (seconds aside); another seed draws other problems."""
    job = dict(method="postblock_vector", task="gsm", seed=0, lr=0.05, settings=TINY)
    a, b = compare.run_one(**job), compare.run_one(**job)
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}
    assert strip(a) == strip(b)
    assert strip(compare.run_one(**{**job, "seed": 1})) != strip(a)


def test_a_joint_run_records_each_inference_mode():
    """A joint method is also scored with only its LoRA and only its steering adapter (the official
    code's inference modes); 'all' is the run's own accuracy. Rejects modes missing, or 'all'
    computed from a different model than the one scored."""
    record = compare.run_one(method="joint_orth_input", task="gsm", seed=0, lr=6e-3, settings=TINY)
    assert set(record["modes"]) == {"all", "lora_only", "adapter_only"}
    assert record["modes"]["all"] == record["accuracy"]
    single = compare.run_one(method="postblock_vector", task="gsm", seed=0, lr=0.05, settings=TINY)
    assert "modes" not in single


def test_joint_modes_table_averages_over_seeds():
    """Rejects a table that shows one seed, or that swaps the mode columns."""
    s = replace(compare.Settings(), methods=("joint_orth_input",), tasks=("gsm",), seeds=(0, 1))
    records = [dict(method="joint_orth_input", task="gsm", seed=k,
                    modes={"all": 0.5 + 0.1 * k, "lora_only": 0.4, "adapter_only": 0.1 * k}) for k in (0, 1)]
    table = report.joint_modes(records, s)
    assert table.splitlines()[0] == "| joint method, task | adapter_only | all | lora_only |"
    assert table.splitlines()[2] == f"| {A.METHODS['joint_orth_input'].label}, gsm | 5.0 | 55.0 | 40.0 |"
    assert report.joint_modes([dict(method="full", task="gsm", seed=0)], s) == ""


def test_each_run_is_logged_at_once_and_resume_skips_finished_runs(tmp_path, monkeypatch):
    """Rejects a resume that reruns finished runs or one that mixes runs of other settings."""
    log = tmp_path / "runs.jsonl"
    jobs = [dict(method="postblock_vector", task=t, seed=0, lr=0.05, settings=TINY) for t in ("gsm", "boolq")]
    first = compare.run_jobs(jobs, 1, "test", log)
    assert [json.loads(line)["task"] for line in log.read_text().splitlines()] == ["gsm", "boolq"]
    log.write_text(log.read_text().splitlines()[0] + "\n" + '{"torn line')  # as if killed mid-run
    ran = []
    monkeypatch.setattr(compare, "_run_job", lambda job: ran.append(job["task"]) or compare.run_one(**job))
    again = compare.run_jobs(jobs, 1, "test", log, resume=True)
    assert ran == ["boolq"] and [r["task"] for r in again] == ["gsm", "boolq"]
    assert again[0] == first[0]
    other = [{**j, "settings": replace(TINY, steps=3)} for j in jobs]
    ran.clear()
    compare.run_jobs(other, 1, "test", log, resume=True)
    assert ran == ["gsm", "boolq"]  # different settings: nothing reused


def test_a_resume_never_reuses_the_runs_of_another_base(tmp_path, monkeypatch):
    """Rejects a log key without the base checkpoint: ``compare --resume --base mine.npz`` (or
    ``--report-only``) would then tabulate the shipped base's runs as the new base's. The same
    bytes under another file name are the same base, and are reused; a missing file is named."""
    log = tmp_path / "runs.jsonl"
    jobs = [dict(method="postblock_vector", task=t, seed=0, lr=0.05, settings=TINY) for t in ("gsm", "boolq")]
    ran = []

    def fake_run(job):  # records what ran; never loads the checkpoint
        ran.append(job["task"])
        return dict(method=job["method"], task=job["task"], seed=0, lr=job["lr"], split="test", accuracy=0.5,
                    signature=compare.signature(job["settings"], job.get("base_path", str(BASE_PATH))))
    monkeypatch.setattr(compare, "_run_job", fake_run)
    compare.run_jobs(jobs, 1, "test", log)
    same, other = tmp_path / "same.npz", tmp_path / "other.npz"
    same.write_bytes(BASE_PATH.read_bytes())
    other.write_bytes(BASE_PATH.read_bytes() + b"\0")
    ran.clear()
    compare.run_jobs([{**j, "base_path": str(same)} for j in jobs], 1, "test", log, resume=True)
    assert ran == []
    compare.run_jobs([{**j, "base_path": str(other)} for j in jobs], 1, "test", log, resume=True)
    assert ran == ["gsm", "boolq"]
    shipped_only = tmp_path / "shipped.jsonl"  # what --report-only tabulates
    shipped_only.write_text(log.read_text().splitlines()[0] + "\n")
    s, lrs = replace(TINY, methods=("postblock_vector",), tasks=("gsm",), seeds=(0,)), {"postblock_vector": {"gsm": 0.05}}
    assert len(compare.logged_runs(s, shipped_only, lrs)) == 1
    assert compare.logged_runs(s, shipped_only, lrs, base_path=str(other)) == []
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        compare.logged_runs(s, shipped_only, lrs, base_path=str(tmp_path / "typo.npz"))


def test_the_report_leaves_out_runs_at_an_older_learning_rate(tmp_path):
    """After a new sweep moves a rate, the log holds runs at both rates. Rejects a report that
    tabulates every logged run (two rates of one method and task averaged as if seeds)."""
    log = tmp_path / "runs.jsonl"
    s = replace(TINY, methods=("postblock_vector",), tasks=("gsm",))
    record = lambda lr, accuracy: dict(method="postblock_vector", task="gsm", seed=0, lr=lr, split="test",
                                       accuracy=accuracy, signature=compare.signature(s))
    log.write_text("".join(json.dumps(record(lr, acc)) + "\n" for lr, acc in ((0.05, 0.1), (0.2, 0.9))))
    lrs = {"postblock_vector": {"gsm": 0.2}}
    assert [r["accuracy"] for r in compare.logged_runs(s, log, lrs)] == [0.9]
    assert compare.logged_runs(s, log, {"postblock_vector": {"gsm": 0.5}}) == []  # not run yet


def _interrupt(_):
    raise KeyboardInterrupt


def test_ctrl_c_stops_the_workers_promptly():
    """Rejects waiting for the running jobs (30 s sleeps) before returning."""
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        pool.for_each_result(time.sleep, [0.01, 30, 30, 30], 2, _interrupt)
    assert time.perf_counter() - start < 20


def test_compare_refuses_an_unwritable_out_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        compare.main(["--quick", "--out", str(blocker / "out")])


# ---------------------------------------------------------------- the table


def _fake_records(settings, accs, lr_of):
    return [dict(method=m, task=t, seed=s, lr=lr_of(m), accuracy=accs(m, t, s), n_scored=settings.n_test)
            for m in settings.methods for t in settings.tasks for s in settings.seeds]


def test_table_intervals_ratios_and_edge_flags():
    """Each cell is the mean, the bootstrap interval (stats.cell), the median and k of n that learned
    the format. Rejects a cell that is not its runs' statistics (mutant ``cell_not_its_runs``), a
    missing edge flag, and a parameter ratio not relative to post-block r=8."""
    s = replace(compare.Settings(), methods=("full", "postblock_silu", "lora_r1"), seeds=(0, 1), n_test=100)
    edge = {"full": grid_of("full")[-1], "postblock_silu": grid_of("postblock_silu")[2],
            "lora_r1": grid_of("lora_r1")[0]}
    records = _fake_records(s, lambda m, t, seed: 0.5 if m == "full" else 0.4 + 0.1 * seed, edge.get)
    rows = report.summarize(records, {t: 0.0 for t in s.tasks}, s, BASE_CONFIG)
    full, pb = rows["full"]["tasks"]["gsm"], rows["postblock_silu"]["tasks"]["gsm"]
    for method, cell in (("full", full), ("postblock_silu", pb)):
        runs = [r for r in records if r["method"] == method and r["task"] == "gsm"]
        assert {k: cell[k] for k in ("mean", "lo", "hi", "median", "learned", "n", "points")} == stats.cell(runs)
    assert full["mean"] == pytest.approx(50.0) and full["lo"] < 50 < full["hi"]  # two equal seeds: sampling only
    assert (pb["median"], pb["learned"], pb["n"]) == (pytest.approx(45.0), 1, 2)
    line = next(line for line in report.markdown_table(rows, s, BASE_CONFIG).splitlines()
                if line.startswith("| Post-block r=8 (SiLU)"))
    assert f"45.0 [{pb['lo']:.1f}, {pb['hi']:.1f}] · med 45.0 · 1/2" in line
    assert full["lr_at_edge"] and rows["lora_r1"]["tasks"]["gsm"]["lr_at_edge"] and not pb["lr_at_edge"]
    assert rows["postblock_silu"]["ratio"] == 1.0
    assert rows["lora_r1"]["ratio"] == pytest.approx(A.count_params(BASE_CONFIG, "lora_r1").trainable / 4096)
    table = report.markdown_table(rows, s, BASE_CONFIG)
    full_line = next(line for line in table.splitlines() if line.startswith("| Full FT"))
    assert full_line.count("†") == len(s.tasks) and "SMOKE" not in table
    assert "SMOKE RUN" in report.markdown_table(rows, replace(s, quick=True), BASE_CONFIG)
    partial = [r for r in records if not (r["method"] == "lora_r1" and r["task"] == "gsm")]  # an interrupted run
    rows = report.summarize(partial, {t: 0.0 for t in s.tasks}, s, BASE_CONFIG)
    table = report.markdown_table(rows, s, BASE_CONFIG)
    assert "not run" in next(line for line in table.splitlines() if line.startswith("| LoRA r=1"))
    assert "Incomplete: 1 method × task cells were not run" in table and rows["lora_r1"]["avg"] is None


@pytest.mark.slow
def test_compare_quick_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    compare.main(["--quick", "--jobs", "2"])  # the default, multi-process path, into its own folder
    out = tmp_path / "runs/compare-quick"
    assert not (tmp_path / "runs/compare").exists()
    result = json.loads((out / "results.json").read_text())
    runs, summary = result["runs"], result["summary"]
    assert len(runs) == len(compare.HEADLINE) * len(TASK_NAMES) == len((out / "runs.jsonl").read_text().splitlines())
    for r in runs:
        assert r["accuracy"] is not None and 0.0 <= r["accuracy"] <= 1.0, r  # no divergence
    # every method trained: it moved the model (rejects a zero learning rate), and not uphill (rejects
    # gradient ascent, which takes the fixed batch's loss up by an order of magnitude or more on every task
    # in 25 steps). Not "its loss fell on most tasks": the base sits at its loss floor on the benchmark
    # pair (0.003-0.12 nats per token), where 25 steps on 400 problems move that loss either way by up
    # to 2.5x, and a too-large rate can blow one task up (LoReFT at lr 0.1 on Winogrande: 0.003 -> 0.7).
    for method in compare.HEADLINE:
        mine = [r for r in runs if r["method"] == method]
        assert all(r["loss_after"] != r["loss_before"] for r in mine), method
        ratios = [r["loss_after"] / r["loss_before"] for r in mine]
        assert statistics.median(ratios) < 3.0, (method, ratios)
    table = (out / "table.md").read_text().splitlines()
    assert table[0].startswith("**SMOKE RUN")
    header = [c.strip() for c in table[2].strip("|").split("|")]
    assert header == ["Method", "Params", "× PB r8", *TASK_NAMES, "Avg", "Gap to FT", "% of FT"]
    rows = [line for line in table[4:] if line.startswith("|") and "---" not in line][:len(compare.HEADLINE) + 1]
    assert all(len(r.strip("|").split("|")) == len(header) for r in rows)
    assert set(summary) == set(compare.HEADLINE) | {"base"}
    assert summary["full"]["percent"] == pytest.approx(100.0)
    percent = {m: summary[m]["percent"] for m in ("postblock_vector", "postblock_silu", "lora")}
    assert 0 < percent["postblock_vector"] < percent["postblock_silu"] < percent["lora"]
    pytest.importorskip("matplotlib")
    for name in ("accuracy_vs_params", "joint_vs_single"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000


def test_the_seed_figure_shows_every_seed_not_only_the_mean(tmp_path):
    """One dot per run that finished, at its own accuracy, in its method's column of its task.
    Rejects a figure of means alone or of one seed (mutant ``figure_one_seed``)."""
    from ministeer.experiments.figures import seed_points
    s = replace(compare.Settings(), methods=("full", "lora_r1"), tasks=("gsm", "boolq"), seeds=(0, 1, 2))
    records = _fake_records(s, lambda m, t, seed: [0.0, 0.9, 0.95][seed] if m == "lora_r1" else 0.5, lambda m: 0.01)
    rows = report.summarize(records, {t: 0.0 for t in s.tasks}, s, BASE_CONFIG)
    points = seed_points(rows, s.tasks)
    assert len(points) == len(records)
    lora_gsm = sorted(y for x, y, m in points if m == "lora_r1" and x < 0.5)
    assert lora_gsm == pytest.approx([0.0, 90.0, 95.0])
    assert all(x > 0.5 for x, _, _ in points[len(points) // 2:])  # the second task's group
    pytest.importorskip("matplotlib")
    from ministeer.experiments import figures
    import matplotlib.pyplot as plt
    assert figures.every_seed(plt, rows, s.tasks, tmp_path / "every_seed.png").stat().st_size > 1000


@pytest.mark.slow
def test_analyze_quick_end_to_end(tmp_path):
    from ministeer.experiments import analyze
    analyze.main(["--quick", "--out", str(tmp_path), "--no-figures"])
    (r,) = json.loads((tmp_path / "analysis.json").read_text())
    assert len(r["mlp_share"]) == BASE_CONFIG.n_layers and all(s >= 0 for s in r["mlp_share"])
    kl = r["kl"]
    # the block oracle moves the base toward FT (FT's embedding/unembedding change is outside its reach)
    assert kl["oracle (blocks)"] < kl["base (no steer)"]
    assert set(r["embed_change"]) == {"embed", "final_norm", "unembed"}
    for spec in r["spectrum"].values():
        s = spec["singular_values"]
        assert s == sorted(s, reverse=True) and 1 <= spec["rank90"] <= spec["rank99"] <= BASE_CONFIG.d_model
