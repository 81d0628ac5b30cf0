"""No command loses work: bad arguments stop before anything is touched, a log that holds runs
is never emptied, an output folder has one writer at a time, a resume continues only its own
start, and every file is written atomically (docs/guarantees.md).

The commands are driven in-process through ``ministeer.cli.main`` with the runs faked
(``compare._run_job``, ``compare.base_accuracy``) or a couple of tiny pretraining steps.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ministeer import adapters as A
from ministeer import init_params, save_model
from ministeer.cli import main
from ministeer.experiments import compare, pool, pretrain
from ministeer.experiments.pretrain import BASE_CONFIG, BASE_PATH, fingerprint
from ministeer.io import CheckpointError
from ministeer.usage import UsageError, folder_lock

ROOT = Path(__file__).resolve().parent.parent
LOG = '{"method": "full", "task": "gsm", "seed": 0, "accuracy": 0.5}\n' * 3  # a log holding finished runs
TINY_PRETRAIN = ["--steps", "4", "--batch-size", "4", "--per-task-format", "20", "--warmup", "1", "--no-gates"]
FAKE = ["--quick", "--tasks", "gsm", "--methods", "postblock_vector", "--jobs", "1", "--no-figures"]


@pytest.fixture
def out(tmp_path):
    """An output folder whose runs.jsonl holds finished runs."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "runs.jsonl").write_text(LOG)
    return folder


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

# ---------------------------------------------------------------- every bad value: one line, exit 2, nothing touched


BAD = [  # (command line with OUT for the output, words the one line must hold)
    *[(["pretrain", *argv, "--out", "OUT/base.npz"], words) for argv, words in [
        (["--steps", "-3"], "--steps: expected a positive integer, got -3"),
        (["--steps", "0"], "--steps: expected a positive integer, got 0"),
        (["--steps", "2.5"], "--steps: expected an integer, got '2.5'"),
        (["--lr", "nan"], "--lr: expected a finite number > 0, got 'nan'"),
        (["--lr", "-1"], "--lr: expected a finite number > 0"),
        (["--lr", "inf"], "--lr: expected a finite number > 0, got 'inf'"),
        (["--clip", "0"], "--clip: expected a finite number > 0"),
        (["--clip", "nan"], "--clip: expected a finite number > 0"),
        (["--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
        (["--schedule", "bogus"], "--schedule: invalid choice: 'bogus'"),
        (["--warmup", "-1"], "--warmup: expected an integer >= 0"),
        (["--save-every", "-1"], "--save-every: expected an integer >= 0"),
        (["--per-task-format", "0"], "--per-task-format: expected a positive integer"),
        (["--data-seed", "-1"], "--data-seed: expected an integer >= 0"),
        (["--init-seed", "-1"], "--init-seed: expected an integer >= 0"),
        (["--task-weights", "boolq=nan"], "'boolq=nan': a weight must be a finite positive number"),
        (["--task-weights", "boolq=inf"], "'boolq=inf': a weight must be a finite positive number"),
        (["--init-from", "OUT/tpyo.npz"], "--init-from: no such file"),
        (["--init-from", "OUT/runs.jsonl"], "--init-from: unknown checkpoint format"),
        (["--batch-size", "-1"], "--batch-size: expected a positive integer, got -1"),
        (["--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    ]],
    *[(["compare", *argv, "--out", "OUT"], words) for argv, words in [
        (["--base", "OUT/tpyo.npz"], "--base: no such file: "),
        (["--base", "OUT/runs.jsonl"], "--base: unknown checkpoint format"),
        (["--seeds", "-1"], "--seeds: expected an integer >= 0, got -1"),
        (["--init-seeds", "0", "-2"], "--init-seeds: expected an integer >= 0, got -2"),
        (["--steps", "-5"], "--steps: expected a positive integer, got -5"),
        (["--steps", "0"], "--steps: expected a positive integer, got 0"),
        (["--jobs", "0"], "--jobs: expected a positive integer, got 0"),
        (["--methods", "lorax"], "--methods: invalid choice: 'lorax'"),
        (["--resume", "--fresh"], "--fresh: not allowed with argument --resume"),
        (["--report-only", "--fresh"], "--report-only runs nothing"),
        (["--quick"], "already holds 3 run(s); add --resume to continue them, or --fresh"),
    ]],
    *[(["analyze", *argv, "--out", "OUT"], words) for argv, words in [
        (["--jobs", "0"], "--jobs: expected a positive integer, got 0"),
        (["--base", "OUT/tpyo.npz"], "--base: no such file"),
        (["--tasks", "mmlu"], "--tasks: invalid choice: 'mmlu'"),
    ]],
]


@pytest.mark.parametrize("argv, words", BAD, ids=[" ".join(a[:-2]) for a, _ in BAD])
def test_every_bad_value_is_one_line_exit_2_before_any_work(argv, words, out, capsys):
    """Rejects a traceback, argparse's usage block, a value accepted and used (``--batch-size -1``
    trained on the whole pool, ``--steps 0`` ran 25 steps or wrote an untrained model, ``--jobs 0``
    ran with 0 workers) and any check that comes after the output folder is touched: the
    finished runs in --out stay byte-identical and nothing is added beside them. Kills the
    mutants ``cli_steps_any_int``, ``cli_float_inf`` and ``compare_base_checked_late``."""
    argv = [a.replace("OUT", str(out)) for a in argv]
    before = _snapshot(out)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ministeer {argv[0]}: ") and words in err, err
    assert "--help" in err and "Traceback" not in err and "usage:" not in err
    assert _snapshot(out) == before


def test_a_bad_value_from_the_real_command_is_one_line(tmp_path):
    """The console entry point itself (a subprocess): exit 2, one stderr line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "ministeer.cli", "compare", "--out", str(tmp_path),
                           "--base", str(tmp_path / "tpyo.npz")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "no such file" in proc.stderr and "(see ministeer compare --help)" in proc.stderr

# ---------------------------------------------------------------- compare: the log is never emptied


def _fake_compare(monkeypatch):
    """Runs that cost nothing: each job returns a record at once; the base scores 0.25."""
    ran = []

    def fake_run(job):
        ran.append((job["task"], job["seed"]))
        return dict(method=job["method"], task=job["task"], seed=job["seed"], lr=job["lr"], split="test",
                    n_scored=40, accuracy=0.5 + 0.1 * job["seed"], signature=compare.signature(job["settings"]))
    monkeypatch.setattr(compare, "_run_job", fake_run)
    monkeypatch.setattr(compare, "base_accuracy", lambda task, settings, base_path: 0.25)
    return ran


def test_run_jobs_refuses_a_log_that_holds_runs_and_never_empties_it(tmp_path, monkeypatch):
    """Rejects ``run_jobs`` starting afresh by truncating the log (a plain rerun after Ctrl-C
    emptied it). Kills the mutant ``compare_truncates_log``."""
    ran = _fake_compare(monkeypatch)
    log = tmp_path / "runs.jsonl"
    log.write_text(LOG)
    jobs = compare.planned_jobs(compare.replace(compare.Settings(**compare.QUICK), tasks=("gsm",),
                                                methods=("postblock_vector",)))
    with pytest.raises(UsageError, match="--resume"):
        compare.run_jobs(jobs, 1, "test", log)
    assert log.read_text() == LOG and ran == []
    compare.run_jobs(jobs, 1, "test", log, resume=True)  # resuming appends
    assert log.read_text().startswith(LOG) and len(log.read_text().splitlines()) == 4


def test_fresh_moves_the_old_log_aside_and_never_deletes_it(out, monkeypatch, capsys):
    """Rejects ``--fresh`` deleting or truncating the old log: its bytes live on in
    ``runs.<time>.jsonl``, and a second --fresh in the same second gets its own name. Kills
    ``fresh_deletes_log``."""
    _fake_compare(monkeypatch)
    assert main(["compare", *FAKE, "--out", str(out), "--fresh"]) == 0
    assert "moved the old runs.jsonl" in capsys.readouterr().out
    new_log = (out / "runs.jsonl").read_text()
    assert len(new_log.splitlines()) == 1
    assert main(["compare", *FAKE, "--out", str(out), "--fresh"]) == 0
    moved = sorted(p.read_text() for p in out.glob("runs.*.jsonl"))
    assert sorted(moved) == sorted([LOG, new_log]) and (out / "runs.jsonl").exists()


def test_a_sweep_into_a_folder_with_runs_refuses_before_sweeping(out, monkeypatch, capsys):
    """Every log is checked before any work: a ``--sweep`` into a folder whose runs.jsonl holds
    runs stops at once, not after the sweep. Kills ``compare_log_not_checked``."""
    ran = _fake_compare(monkeypatch)
    before = _snapshot(out)
    assert main(["compare", *FAKE, "--out", str(out), "--sweep"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert _snapshot(out) == before and ran == []


def test_a_second_compare_into_a_locked_folder_is_refused(out, monkeypatch, capsys):
    """While one command holds the folder, a second stops in one line and touches nothing.
    Kills ``lock_not_taken``."""
    ran = _fake_compare(monkeypatch)
    before = _snapshot(out)
    with folder_lock(out, "--out"):
        assert main(["compare", *FAKE, "--out", str(out), "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is in use by another running ministeer command" in err
        assert main(["analyze", "--quick", "--out", str(out)]) == 2
    assert _snapshot(out) == before and ran == []
    assert main(["compare", *FAKE, "--out", str(out), "--resume"]) == 0  # released: it runs


def test_the_lock_holds_across_processes(tmp_path):
    """Another process holding the folder (as a running compare does) refuses this one; the
    lock dies with its holder."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom ministeer.usage import folder_lock\n"
                               f"with folder_lock({str(tmp_path)!r}, '--out'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="in use"):
            with folder_lock(tmp_path, "--out"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(tmp_path, "--out"):
        pass


def test_report_only_marks_every_cell_with_fewer_seeds_than_asked(tmp_path, monkeypatch, capsys):
    """A half-finished folder (seed 0 of seeds 0 and 1): the cell says '1 of 2 seeds' and a line
    above the table says the table is incomplete. Rejects the silent "mean over seeds [0, 1]"
    of one seed. Kills ``partial_cell_unmarked`` and ``incomplete_note_no_partial``."""
    _fake_compare(monkeypatch)
    argv = ["compare", *FAKE, "--out", str(tmp_path), "--seeds", "0", "1"]
    settings = compare.replace(compare.Settings(**compare.QUICK), tasks=("gsm",), methods=("postblock_vector",),
                               seeds=(0,))
    log = tmp_path / "runs.jsonl"
    for job in compare.planned_jobs(settings):
        compare.append_record(log, compare._run_job(job))
    assert main([*argv, "--report-only"]) == 0
    table = (tmp_path / "table.md").read_text()
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| Method"))
    assert any("Incomplete" in line and "fewer than the 2 seeds" in line for line in lines[:header])
    row = next(line for line in lines if line.startswith(f"| {A.METHODS['postblock_vector'].label} |"))
    assert "(1 of 2 seeds)" in row
    assert log.read_text().count("\n") == 1  # --report-only ran nothing and wrote no run
    assert main([*argv, "--resume"]) == 0  # finished: nothing is marked
    table = (tmp_path / "table.md").read_text()
    assert "seeds)" not in table and "Incomplete" not in table

# ---------------------------------------------------------------- pretrain: start identity and the lock


def _start(path, seed):
    save_model(path, init_params(BASE_CONFIG, seed), BASE_CONFIG)
    return path


def _killed_at_step_2(step, loss, trainable):
    if step == 2:
        raise KeyboardInterrupt


def test_a_pretrain_resume_refuses_another_start(tmp_path, capsys):
    """Killed after its step-2 checkpoint, a run from start A is not continued by a run from
    start B (it used to be, silently: A's weights under B's card); the same start resumes.
    Rejects a run description that says only "given". Kills ``pretrain_init_not_identified``."""
    a, b = _start(tmp_path / "a.npz", 1), _start(tmp_path / "b.npz", 2)
    small = dict(steps=4, batch_size=4, per_task_format=20, warmup=1)
    folder = tmp_path / "out" / "checkpoints"  # where `pretrain --out out/base.npz` keeps them
    init_a = pretrain.load_model(a)[0]
    with pytest.raises(KeyboardInterrupt):
        pretrain.pretrain(progress=False, init=init_a, checkpoint_dir=folder, save_every=2,
                          callback=_killed_at_step_2, **small)
    with pytest.raises(CheckpointError, match="init"):
        pretrain.pretrain(progress=False, init=pretrain.load_model(b)[0], checkpoint_dir=folder, save_every=2, **small)
    with pytest.raises(CheckpointError, match="init"):
        pretrain.pretrain(progress=False, checkpoint_dir=folder, save_every=2, **small)  # init_params
    argv = ["pretrain", *TINY_PRETRAIN, "--save-every", "2", "--out", str(tmp_path / "out" / "base.npz")]
    assert main([*argv, "--init-from", str(b)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "belongs to another run" in err and "init" in err
    assert not (tmp_path / "out" / "base.npz").exists()
    assert main([*argv, "--init-from", str(a)]) == 0  # its own start: resumes
    card = json.loads((tmp_path / "out" / "base.json").read_text())
    assert card["init_sha256"] == fingerprint(init_a)


def test_a_second_pretrain_into_a_locked_folder_is_refused(tmp_path, capsys):
    """Kills ``lock_not_taken`` from the pretraining side: nothing is trained or written."""
    with folder_lock(tmp_path, "--out"):
        assert main(["pretrain", *TINY_PRETRAIN, "--out", str(tmp_path / "base.npz")]) == 2
    assert "is in use by another running ministeer command" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

# ---------------------------------------------------------------- every file is written atomically


WRITERS = {"write_text", "write_bytes", "savefig", "tofile", "save", "savez", "savez_compressed", "dump"}
# (module, function) allowed to write outside atomic_write, and why:
ALLOWED = {
    ("ministeer/io/arrays.py", "write_safetensors"): "writes only the temporary that atomic_write hands to save_arrays",
    ("ministeer/experiments/runlog.py", "append_record"): "the append-only run log: fsynced line by line; a "
                                                           "crash can cut only its last line, which read_log skips",
}


def plain_writes(path):
    """``[(function, line, call)]``: calls in the module at ``path`` that write a file other than
    the temporary of ``atomic_write`` (a name ``tmp``, or inside a function taking ``tmp``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node, function, in_tmp):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = [a.arg for a in node.args.args]
            function = node.name if isinstance(node, ast.FunctionDef) else function
            in_tmp = in_tmp or "tmp" in args
        if isinstance(node, ast.Call) and not in_tmp:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            opens = name == "open" and isinstance(f, ast.Name) and _write_mode(node)
            if opens or (name in WRITERS and isinstance(f, ast.Attribute) and name != "dump" or
                         name == "dump" and isinstance(f, ast.Attribute) and ast.unparse(f.value) == "json"):
                found.append((function, node.lineno, ast.unparse(node)[:80]))
        for child in ast.iter_child_nodes(node):
            visit(child, function, in_tmp)
    visit(tree, "<module>", False)
    return found


def _write_mode(call):
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+")


def test_every_file_ministeer_writes_goes_through_the_atomic_writer():
    """An AST scan of every module: ``write_text``, ``write_bytes``, ``open(..., 'w'/'a'/'x')``,
    ``json.dump``, ``np.save*``, ``savefig`` and ``tofile`` appear only on ``atomic_write``'s
    temporary or in the short ``ALLOWED`` list. Rejects results.json, table.md, lrs.json, the
    pretraining card, analysis.* and figures written in place (a full disk or a kill left a
    truncated results.json)."""
    offenders = []
    for path in sorted((ROOT / "ministeer").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        offenders += [f"{rel}:{line} in {fn}: {call}" for fn, line, call in plain_writes(path)
                      if (rel, fn) not in ALLOWED]
    assert offenders == [], "\n".join(offenders)


def test_the_scan_sees_each_kind_of_plain_write(tmp_path):
    """The scan itself: every kind of in-place write is found, and the atomic forms are not."""
    module = tmp_path / "m.py"
    module.write_text("import json, numpy as np\nfrom pathlib import Path\n"
                      "def bad(p, x, fig):\n    Path(p).write_text('x')\n    open(p, 'w').write('x')\n"
                      "    open(p, mode='ab')\n    json.dump(x, open(p))\n    np.save(p, x)\n    fig.savefig(p)\n"
                      "def good(p, fig):\n    atomic_write(p, lambda tmp: fig.savefig(tmp))\n    open(p).read()\n"
                      "    def write(tmp):\n        Path(tmp).write_bytes(b'')\n")
    assert [line for _, line, _ in plain_writes(module)] == [4, 5, 6, 7, 8, 9]

# ---------------------------------------------------------------- progress on long phases


def test_long_phases_show_progress_and_run_silently_without_tqdm(capsys, monkeypatch):
    """``analyze``'s tasks (``run_jobs_plain`` with a description) and the gate evaluation
    draw a bar on stderr; without tqdm they print nothing and give the same results."""
    from ministeer.experiments import gates
    assert pool.run_jobs_plain(abs, [-1, -2, 3], 1, desc="analyze (tasks done)") == [1, 2, 3]
    assert "analyze (tasks done)" in capsys.readouterr().err
    params, cfg = pretrain.load_base()
    sizes = dict(n_acc=2, n_probe_train=12, n_probe_test=6, tasks=("gsm",))
    with_bar = gates.evaluate_gates(params, cfg, **sizes)
    assert "gates (tasks evaluated)" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if tqdm were missing
    assert pool.run_jobs_plain(abs, [-1, -2, 3], 1, desc="analyze (tasks done)") == [1, 2, 3]
    assert gates.evaluate_gates(params, cfg, **sizes) == with_bar
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
