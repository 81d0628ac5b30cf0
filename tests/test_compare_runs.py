"""What a ``compare`` run is: which problems a seed draws (training and test draws follow the seed,
the validation draw does not), which seed trains it, which settings make two runs comparable
(the signature), and which logged runs a resume reuses. Each test names the wrong implementation
it rejects (and its mutant in scripts/mutants.py)."""
import json
import dataclasses
from dataclasses import replace

import numpy as np
import pytest

from ministeer import adapters as A
from ministeer.experiments import compare, rates
from ministeer.experiments.grids import grid_of
from ministeer.experiments.pretrain import BASE_PATH
from ministeer.tasks import BENCHMARK, batch_sampler, examples

TINY = replace(compare.Settings(), steps=1, batch_size=4, n_train=8, n_val=3, n_test=5, seeds=(0,), data_seed=10)


def test_the_signature_covers_every_setting_but_which_methods_tasks_and_seeds(tmp_path):
    """Runs are comparable when every setting (steps, batch size, data sizes, data seed, clipping,
    the quick tier) and the base checkpoint's bytes agree; which methods, tasks, seeds, init seeds and
    recipe a command runs is not part of it (a run's own key holds those). Each field is changed alone.
    Rejects a signature that leaves out a field (mutants ``signature_no_data_seed``,
    ``signature_no_steps``): a resume would reuse runs trained or drawn differently."""
    base = tmp_path / "base.npz"
    base.write_bytes(b"some checkpoint bytes")
    ref = compare.signature(TINY, str(base))
    changed = dict(steps=2, batch_size=8, n_train=9, n_val=4, n_test=6, data_seed=11, clip=0.5, quick=True)
    assert set(changed) | {"methods", "tasks", "seeds", "init_seeds", "recipe"} == {
        f.name for f in dataclasses.fields(compare.Settings)}
    for field, value in changed.items():
        assert compare.signature(replace(TINY, **{field: value}), str(base)) != ref, field
    same = replace(TINY, methods=("lora",), tasks=("gsm",), seeds=(3, 4), init_seeds=(1, 2), recipe="official")
    assert compare.signature(same, str(base)) == ref


@pytest.fixture
def recorded(monkeypatch):
    """run_one with its training and scoring recorded instead of run: what it was given."""
    calls = {}

    def train_method(method, params, cfg, data, *, steps, lr, seed, clip, **recipe):
        calls["train"] = dict(method=method, data=data, steps=steps, lr=lr, seed=seed, clip=clip, **recipe)
        return {}, type("Result", (), {"losses": [1.0, 0.5]})()

    def accuracy(logits_fn, scored, **kw):
        calls.setdefault("scored", []).append(scored)
        return 0.25

    def forced_exact_match(logits_fn, scored, **kw):  # one problem in four right
        calls.setdefault("scored", []).append(scored)
        return np.arange(len(scored)) % 4 == 0

    monkeypatch.setattr(A, "train_method", train_method)
    monkeypatch.setattr(compare, "accuracy", accuracy)
    monkeypatch.setattr(compare, "forced_exact_match", forced_exact_match)
    monkeypatch.setattr(compare, "_examples", compare._examples.__wrapped__)  # no cache between tests
    return calls


@pytest.mark.parametrize("seed", [0, 3])
def test_a_runs_seed_draws_its_training_and_test_problems_and_its_batches(recorded, seed):
    """Seed s of a run trains on ``examples(task, "train", n_train, seed=data_seed + s)`` in the batch
    order of ``batch_sampler(..., seed=s)`` with adapter seed s, and is scored on the test draw
    ``data_seed + s``. Rejects draws that ignore the seed (mutant ``draw_ignores_seed``: the spread
    over seeds would leave out data sampling), a fixed batch order (``batches_ignore_seed``) and a
    fixed adapter seed (``train_ignores_seed``)."""
    record = compare.run_one("postblock_vector", "gsm", seed, 0.05, TINY)
    train = examples("gsm", "train", TINY.n_train, seed=TINY.data_seed + seed, fmt=BENCHMARK)
    test = examples("gsm", "test", TINY.n_test, seed=TINY.data_seed + seed, fmt=BENCHMARK)
    got = recorded["train"]
    assert (got["method"], got["steps"], got["lr"], got["seed"], got["clip"]) == ("postblock_vector", 1, 0.05, seed,
                                                                                 TINY.clip)
    expected = batch_sampler(train, TINY.batch_size, seed=seed)
    for step in range(3):
        assert np.array_equal(got["data"](step)["tokens"], expected(step)["tokens"])
    assert recorded["scored"] == [test]
    assert record["n_scored"] == TINY.n_test and record["accuracy"] == 2 / 5
    assert record["correct"] == "10001" and record["init_seed"] == seed
    assert record["signature"] == compare.signature(TINY)


def test_an_init_seed_changes_the_adapters_draw_alone(recorded):
    """``init_seed`` goes to the adapter's init (``train_method``'s seed) and nothing else: the
    training problems, batch order and test problems still follow ``seed``. Rejects an init seed
    that is ignored (mutant ``init_seed_ignored``) or that also moves the data or the batches
    (mutants ``init_seed_moves_batches``, ``init_seed_moves_draw``)."""
    record = compare.run_one("postblock_vector", "gsm", 1, 0.05, TINY, init_seed=7)
    train = examples("gsm", "train", TINY.n_train, seed=TINY.data_seed + 1, fmt=BENCHMARK)
    test = examples("gsm", "test", TINY.n_test, seed=TINY.data_seed + 1, fmt=BENCHMARK)
    assert recorded["train"]["seed"] == 7 and (record["seed"], record["init_seed"]) == (1, 7)
    expected = batch_sampler(train, TINY.batch_size, seed=1)
    for step in range(3):
        assert np.array_equal(recorded["train"]["data"](step)["tokens"], expected(step)["tokens"])
    assert recorded["scored"] == [test]


def test_init_seeds_plan_one_run_per_seed_and_init_seed():
    """``--init-seeds 0 1 2`` with ``--seeds 0``: three runs per cell, one data draw, three inits;
    without init seeds each run's init follows its seed. Rejects a plan that drops the init seeds
    (mutant ``plan_ignores_init_seeds``)."""
    lrs = {"lora": {"gsm": 0.01}}
    s = replace(TINY, methods=("lora",), tasks=("gsm",), seeds=(0,), init_seeds=(0, 1, 2))
    assert [(j["seed"], j["init_seed"]) for j in compare.planned_jobs(s, lrs)] == [(0, 0), (0, 1), (0, 2)]
    plain = replace(s, seeds=(3, 4), init_seeds=None)
    assert [(j["seed"], j["init_seed"]) for j in compare.planned_jobs(plain, lrs)] == [(3, 3), (4, 4)]
    assert compare.parse(["--seeds", "0", "--init-seeds", "2", "1", "2"]).init_seeds == [2, 1, 2]


def test_the_default_tiers_seeds():
    """The headline runs 5 seeds, ``--all`` 3, ``--quick`` 1 (it stays a smoke run). Rejects the old
    2-seed headline (mutant ``headline_two_seeds``)."""
    assert compare.Settings().seeds == (0, 1, 2, 3, 4)
    assert compare.ALL["seeds"] == (0, 1, 2) and compare.QUICK["seeds"] == (0,)
    assert compare.Settings().init_seeds is None


def test_the_validation_draw_is_the_same_for_every_seed(recorded):
    """The learning-rate sweep scores every seed on one validation draw (``data_seed``), so rates
    are compared on the same problems. Rejects a validation draw that follows the run's seed
    (mutant ``val_follows_seed``)."""
    for seed in (0, 2):
        compare.run_one("postblock_vector", "gsm", seed, 0.05, TINY, split="val")
    val = examples("gsm", "val", TINY.n_val, seed=TINY.data_seed, fmt=BENCHMARK)
    assert recorded["scored"] == [val, val]


def test_the_base_accuracy_averages_the_seeds_test_draws(monkeypatch):
    """The unadapted base is scored on each seed's test draw and averaged, as the runs are. Rejects
    scoring it on one draw only (mutant ``base_one_draw``)."""
    seen = []
    monkeypatch.setattr(compare, "accuracy", lambda fn, exs, **kw: seen.append(exs) or float(len(seen)))
    monkeypatch.setattr(compare, "_examples", compare._examples.__wrapped__)
    s = replace(TINY, seeds=(0, 1, 5))
    assert compare.base_accuracy("gsm", s) == 2.0  # (1 + 2 + 3) / 3
    assert seen == [examples("gsm", "test", s.n_test, seed=s.data_seed + k, fmt=BENCHMARK) for k in (0, 1, 5)]


def test_a_resume_reuses_a_logged_run_only_under_its_own_key(tmp_path, monkeypatch):
    """A logged run is reused for the job of the same method, task, seed, init seed, learning rate
    and split. A sweep's validation run is not a test run; a run at another rate, seed or init seed
    is not this one; a logged run without an init seed (older logs) is the run whose init followed
    its seed. Rejects a key without the split (mutant ``job_key_no_split``), without the rate, or
    without the init seed (mutant ``job_key_no_init_seed``)."""
    ran = []

    def fake_run(job):
        init = job.get("init_seed", job["seed"])
        ran.append((job["seed"], init, job["lr"], job.get("split", "test")))
        return dict(method=job["method"], task=job["task"], seed=job["seed"], init_seed=init, lr=job["lr"],
                    split=job.get("split", "test"), accuracy=0.5, signature=compare.signature(job["settings"]))
    monkeypatch.setattr(compare, "_run_job", fake_run)
    log = tmp_path / "runs.jsonl"
    job = dict(method="postblock_vector", task="gsm", seed=0, init_seed=0, lr=0.05, settings=TINY)
    compare.run_jobs([{**job, "split": "val"}], 1, "t", log)
    ran.clear()
    compare.run_jobs([job, {**job, "lr": 0.1}, {**job, "seed": 1, "init_seed": 1}, {**job, "split": "val"}], 1, "t",
                     log, resume=True)
    assert ran == [(0, 0, 0.05, "test"), (0, 0, 0.1, "test"), (1, 1, 0.05, "test")]
    ran.clear()
    compare.run_jobs([job, {**job, "init_seed": 3}], 1, "t", log, resume=True)  # init seed 0 is logged now
    assert ran == [(0, 3, 0.05, "test")]
    old = {k: v for k, v in fake_run({**job, "seed": 5, "init_seed": 5}).items() if k != "init_seed"}
    assert compare.job_key(old) == compare.job_key({**job, "seed": 5, "init_seed": 5})


def test_an_official_resume_reuses_a_shared_run_only_where_the_recipes_agree(tmp_path, monkeypatch):
    """Under ``--recipe official`` a method whose authors' setup is the shared one (the vector:
    linear, 3% warmup) runs the very run the shared recipe ran, so a resume reuses it; JoLA's own
    setup (cosine, 50 warmup steps) and LoReFT's (linear with no warmup: the schedule alone does
    not tell them apart) are other runs and are trained. Rejects a key blind to the recipe
    (mutant ``setup_key_ignores_recipe``: the official table would quote shared JoLA runs), one
    that reads the schedule alone, and one that marks the shared setup too
    (``setup_key_marks_shared``: every committed run would be retrained, and an official log
    could not share the shared one's runs)."""
    ran = []

    def fake_run(job):
        ran.append((job["method"], job["settings"].recipe))
        return dict(method=job["method"], task=job["task"], seed=job["seed"], init_seed=job["seed"], lr=job["lr"],
                    split="test", accuracy=0.5, signature=compare.signature(job["settings"]),
                    setup=compare.setup_key(job["method"], job["settings"]))
    monkeypatch.setattr(compare, "_run_job", fake_run)
    log = tmp_path / "runs.jsonl"
    jobs = lambda recipe: [dict(method=m, task="gsm", seed=0, lr=0.1, settings=replace(TINY, steps=300, recipe=recipe))
                           for m in ("postblock_vector", "jola", "loreft")]
    compare.run_jobs(jobs("shared"), 1, "t", log)
    assert [compare.setup_key(m, replace(TINY, steps=300)) for m in ("postblock_vector", "jola", "loreft")] == [None] * 3
    ran.clear()
    records = compare.run_jobs(jobs("official"), 1, "t", log, resume=True)
    assert ran == [("jola", "official"), ("loreft", "official")]
    assert [r["setup"] for r in records] == [None, ("cosine", 50), ("linear", 0)]
    ran.clear()
    compare.run_jobs(jobs("official") + jobs("shared"), 1, "t", log, resume=True)  # both are logged now
    assert ran == []


def _val(lr, accuracy, val_loss=1.0, method="lora", task="gsm", seed=0):
    return dict(method=method, task=task, seed=seed, lr=lr, split="val", accuracy=accuracy, val_loss=val_loss)


def test_the_sweep_chooses_by_accuracy_then_loss_then_the_smaller_rate():
    """Per method and task: the best mean validation accuracy over the seeds; among equal accuracies
    the lower mean validation loss; among full ties the smaller rate, whatever order the runs
    finished in; a point where a seed diverged (accuracy None) never wins. Rejects ties going to the
    larger rate (mutant ``sweep_ties_larger``), the higher loss preferred
    (``sweep_prefers_higher_loss``) and a diverged run counted as the best (``sweep_diverged_wins``)."""
    by_accuracy = [_val(0.01, 0.5), _val(0.02, 0.7), _val(0.05, 0.6)]
    by_loss = [_val(0.01, 0.5, 2.0), _val(0.02, 0.5, 1.0), _val(0.05, 0.4, 0.1)]
    tied = [_val(0.05, 0.5), _val(0.01, 0.5), _val(0.02, 0.5)]
    diverged = [_val(0.01, 0.0, 3.0), {**_val(0.02, None), "val_loss": None}]
    for records, lr in ((by_accuracy, 0.02), (by_loss, 0.02), (tied, 0.01), (diverged, 0.01)):
        for order in (records, records[::-1]):
            assert rates.choose_lrs(order) == {"lora": {"gsm": lr}}
    two = rates.choose_lrs([_val(0.01, 0.5), _val(0.02, 0.9, task="boolq"), _val(0.05, 0.1, task="boolq")])
    assert two == {"lora": {"gsm": 0.01, "boolq": 0.02}}


def test_the_sweep_picks_by_the_mean_over_its_seeds():
    """A rate that one seed likes and the other falls off (0.9 and 0.0) loses to a steadier one (0.6
    and 0.5), and a second seed that diverged sinks its rate. Rejects a pick by the first seed alone
    (mutant ``sweep_first_seed_only``) and a mean that skips a diverged seed
    (``sweep_mean_skips_diverged``)."""
    cliff = [_val(0.01, 0.6), _val(0.01, 0.5, seed=1), _val(0.02, 0.9), _val(0.02, 0.0, seed=1)]
    assert rates.choose_lrs(cliff) == {"lora": {"gsm": 0.01}}
    assert rates.choose_lrs(cliff[::-1]) == {"lora": {"gsm": 0.01}}
    blown = [_val(0.01, 0.5), _val(0.01, 0.5, seed=1), _val(0.02, 0.9), {**_val(0.02, None, seed=1), "val_loss": None}]
    assert rates.choose_lrs(blown) == {"lora": {"gsm": 0.01}}
    scores = rates.sweep_scores(cliff)["lora"]["gsm"]
    assert scores[0.02]["accuracy"] == pytest.approx(0.45) and scores[0.02]["seeds"][1]["accuracy"] == 0.0


def test_the_sweep_scores_each_grid_rate_on_validation_with_two_seeds(monkeypatch):
    """One validation run per method, task, rate of the method's grid and each of the settings'
    first two seeds (a one-seed tier adds the next seed). Rejects a sweep on the test split or with
    other seeds (mutant ``sweep_last_seed``) or with one seed (``sweep_one_seed``)."""
    seen = []
    monkeypatch.setattr(compare, "run_jobs", lambda jobs, *a, **k: seen.extend(jobs) or [
        _val(j["lr"], 0.5, method=j["method"], task=j["task"], seed=j["seed"]) for j in jobs])
    s = replace(TINY, methods=("lora", "jola"), tasks=("gsm",), seeds=(4, 7, 9))
    compare.sweep(s, 1, str(BASE_PATH))
    assert sorted((j["method"], j["lr"], j["seed"]) for j in seen) == sorted(
        (m, lr, seed) for m in ("lora", "jola") for lr in grid_of(m) for seed in (4, 7))
    assert {(j["split"], j["task"]) for j in seen} == {("val", "gsm")}
    assert rates.sweep_seeds(replace(TINY, seeds=(3,))) == (3, 4)


def test_the_signature_follows_a_base_rewritten_in_place(tmp_path):
    """``ministeer pretrain --out`` over the same file: the signature must follow the new bytes, even
    though the digest is cached per file. Rejects a cache keyed by the path alone (mutant
    ``signature_cached_by_path``): a resume would reuse the old base's runs."""
    base = tmp_path / "base.npz"
    base.write_bytes(b"the first base")
    first = compare.signature(TINY, str(base))
    base.write_bytes(b"a second, longer base")
    assert compare.signature(TINY, str(base)) != first
    base.write_bytes(b"the first base")
    assert compare.signature(TINY, str(base)) == first


def test_a_joint_methods_inference_modes_are_scored_on_test_runs_only(recorded, monkeypatch):
    """The official inference-mode ablation is part of a test run's record; a sweep's validation run
    skips it (three more scorings that no table reads). Rejects scoring the modes on validation too
    (mutant ``modes_on_validation``)."""
    monkeypatch.setattr(A, "inference_logits_fns", lambda *a: {"all": None, "lora_only": None, "adapter_only": None})
    assert "modes" not in compare.run_one("joint_orth_input", "gsm", 0, 0.01, TINY, split="val")
    assert set(compare.run_one("joint_orth_input", "gsm", 0, 0.01, TINY)["modes"]) == {"all", "lora_only",
                                                                                     "adapter_only"}


def test_every_registered_method_has_a_grid_and_only_those():
    """The benchmark's tuning covers the registry exactly: a new method without a grid is a clear
    error naming the file, and a grid for a method that no longer exists is caught here."""
    from ministeer.experiments.grids import GRIDS
    assert set(GRIDS) == set(A.METHODS)
    assert all(len(g) >= 5 and list(g) == sorted(g) for g in GRIDS.values())
    with pytest.raises(KeyError, match="experiments/grids.py"):
        grid_of("no_such_method")


def test_the_shipped_rates_say_which_sweep_chose_each(tmp_path):
    """A sweep's --write-lrs keeps the other methods' and tasks' rates, and records per method and
    task the seeds, steps, validation size and recipe its rate was scored on, so a file built by
    two sweeps (two seeds here, one seed there) says which is which. Rejects the last sweep's
    settings written for every method (mutant ``lrs_file_last_sweep_for_all``) and a merge that
    drops the stored rates of a task the new sweep did not run (``lrs_file_drops_stored``)."""
    path = tmp_path / "lrs.json"
    first = rates.merged_lrs_file({"lora": {"gsm": 0.01, "boolq": 0.02}, "jola": {"gsm": 0.1}},
                                  replace(TINY, seeds=(0,)), path, signature=compare.signature(TINY))
    path.write_text(json.dumps(first))
    second = rates.merged_lrs_file({"lora": {"gsm": 0.05}, "full": {"gsm": 0.002}},
                                   replace(TINY, seeds=(3, 4), steps=7, recipe="official"), path,
                                   signature=compare.signature(replace(TINY, steps=7)))
    assert second["lrs"] == {"lora": {"gsm": 0.05, "boolq": 0.02}, "jola": {"gsm": 0.1}, "full": {"gsm": 0.002}}
    old, new = second["swept"]["lora"]["boolq"], second["swept"]["lora"]["gsm"]
    assert (old["seeds"], old["steps"], old["recipe"]) == ([0, 1], 1, "shared")
    assert (new["seeds"], new["steps"], new["recipe"]) == ([3, 4], 7, "official")
    assert second["swept"]["full"]["gsm"] == new and second["swept"]["jola"]["gsm"] == first["swept"]["jola"]["gsm"]
    assert old["signature"] == compare.signature(TINY) != new["signature"]
    assert set(second["grids"]) == {"lora", "jola", "full"}


def test_every_shipped_rate_names_the_sweep_that_chose_it():
    """The shipped lrs.json has a rate and a sweep record for every registered method and task,
    and every rate lies in its method's grid (rejects a rate typed in by hand, or one left from a
    grid that has since changed)."""
    shipped = json.loads(rates.LR_PATH.read_text())
    for method in A.METHODS:
        for task in compare.TASK_NAMES:
            assert shipped["lrs"][method][task] in compare.grid_of(method), (method, task)
            assert len(shipped["swept"][method][task]["seeds"]) >= rates.SWEEP_SEEDS, (method, task)
