"""The classroom exercises: grading a student's files, and tests of the checkers themselves.

* ``test_answer[N.M]`` *grades* one exercise in the student's files: ``pytest -m
  exercise_2_1`` grades ``my_answers/`` (a copy of ``examples/exercises/``), ``--exercises
  DIR`` another file or folder. It is the only test with the ``exercise*`` markers, and it
  skips unless a run asks for grading (tests/conftest.py), so the suite never grades anyone.
* ``test_reference_solution`` and ``test_wrong_answer`` test the checkers: the reference
  solutions must pass, typical mistakes must fail *with the right hint*. Both need
  ``ministeer/exercises/solutions.py``; when an instructor removes it they skip with a
  one-line reason, and ``test_suite_passes_without_solutions`` proves the rest still passes.
* ``test_stub`` and the tests after it check what students start from: every stub fails as
  "not implemented yet", and grading output names the files it graded.
"""
import csv
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ministeer import run_with_cache
from ministeer.exercises import EXERCISES, ExerciseFailed, grade, load_answers, main, marker
from ministeer.exercises.grading import grade_one
from ministeer.exercises.notebook import percent_cells, write_notebooks
from ministeer.tree import tree_map

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "examples" / "exercises"
NAMES = [name for name, _, _ in EXERCISES.values()]
NO_SOLUTIONS = "reference solutions removed (ministeer/exercises/solutions.py): the checkers' self-tests skip"
NESTED = "MINISTEER_NESTED_PYTEST"  # set in the pytest runs these tests start, so they do not recurse

try:
    from ministeer.exercises import solutions as S
except ImportError:  # an instructor removed the reference solutions
    S = None


def by_number(numbers, graded=False):
    marks = lambda n: [pytest.mark.exercise, getattr(pytest.mark, marker(n))] if graded else []
    return [pytest.param(n, marks=marks(n), id=n) for n in numbers]


# ---------------------------------------------------------------- grading the student


@pytest.mark.parametrize("number", by_number(EXERCISES, graded=True))
def test_answer(number, student_answers, capsys):
    """Grades Exercise N.M in the student's files (``student_answers``: ../conftest.py; the
    report header names the files)."""
    path, failure = grade_one(student_answers, number, *EXERCISES[number])
    if failure:
        pytest.fail(f"{failure}\n(graded {path or student_answers.source})", pytrace=False)
    assert f"Exercise {number}" in capsys.readouterr().out  # the checker printed its pass message


# ---------------------------------------------------------------- the checkers, on the reference


@pytest.mark.skipif(S is None, reason=NO_SOLUTIONS)
@pytest.mark.parametrize("number", by_number(EXERCISES))
def test_reference_solution(number, capsys):
    """Each checker accepts the reference answer (rejects a checker that fails everything)."""
    name, checker, _ = EXERCISES[number]
    assert checker(getattr(S, name)) is True
    assert f"✓ Exercise {number}" in capsys.readouterr().out


# ---------------------------------------------------------------- typical wrong answers


def _wrong_answers():
    """``(number, label, wrong function, a phrase the hint must contain)``."""
    if S is None:
        return []

    def hook_with(shift_position=0, everywhere=False, in_place=False, item_assign=False):
        def make(vector, position):
            def hook(act, name):
                if in_place:
                    act[:, position % act.shape[1]] += vector
                    return act * 1.0
                if item_assign:
                    out = np.array(act)
                    out[:, position % act.shape[1]] += np.asarray(vector)
                    return out
                if everywhere:
                    return act + vector
                return S.add_at_position(vector, position + shift_position)(act, name)
            return hook
        return make

    def weak_property(impl):  # checks almost nothing
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=5, database=None)
        @given(st.integers(0, 100))
        def prop(seed):
            v, residual = impl(np.eye(2), np.ones((3, 2)))
            assert np.all(np.isfinite(v))
        return prop

    def too_strict_property(impl):  # demands exact float equality: fails on the true function
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=20, database=None)
        @given(st.integers(0, 10**6))
        def prop(seed):
            rng = np.random.default_rng(seed)
            dW, X = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
            v, residual = impl(dW, X)
            assert float(residual) == float(np.sum((X @ dW.T - v) ** 2))
            assert float(residual) < 0.5
        return prop

    def not_hypothesis(impl):
        return lambda: None

    def exact_shift(params, delta, tokens, cfg, site):
        at = lambda p: run_with_cache(p, tokens, cfg, names=[site])[1][site]
        return at(tree_map(lambda a, b: a + b, params, delta)) - at(params)

    def always_layer(site_suffix, layer=0, reason="its output lies in the column space of W_d"):
        return lambda problem: (f"blocks.{layer}.{site_suffix}", reason)

    def right_site_no_reason(problem):
        site, _ = S.find_unreachable_site(problem)
        return site, "because it is before the MLP"

    return [
        ("1.1", "no skip", lambda cache, l: cache[f"blocks.{l}.hook_attn_out"] + cache[f"blocks.{l}.hook_mlp_out"],
         "skip connection"),
        ("1.1", "attention twice", lambda cache, l: sum(cache[f"blocks.{l}.{s}"] for s in
                                                        ("hook_resid_mid", "hook_attn_out", "hook_mlp_out")),
         "counted twice"),
        ("1.2", "off by one", hook_with(shift_position=1), "off by one"),
        ("1.2", "every position", hook_with(everywhere=True), "every position"),
        ("1.2", "in place", hook_with(in_place=True), "in place"),
        ("1.2", "item assignment", hook_with(item_assign=True), "item assignment"),
        ("2.1", "transposed", lambda W, dW, x: x @ dW, "transposed"),
        ("2.1", "sign", lambda W, dW, x: -S.linear_shift(W, dW, x), "sign error"),
        ("2.1", "fine-tuned output", lambda W, dW, x: x @ (W + dW).T, "fine-tuned output"),
        ("2.2", "sign", lambda *a: -S.first_order_shift(*a), "sign error"),
        ("2.2", "exact shift", exact_shift, "exact shift"),
        ("2.3", "W transposed", lambda W, dW, x: x @ (W.T @ dW).T, "pseudo-inverse"),
        ("2.3", "output shift", lambda W, dW, x: x @ dW.T, "that is the output shift"),
        ("2.3", "sign", lambda W, dW, x: -S.input_shift(W, dW, x), "sign error"),
        ("5.1", "first sample", lambda dW, X: (dW @ X[0], S.best_constant_steer(dW, X)[1]), "mean shift"),
        ("5.1", "unsquared", lambda dW, X: (S.best_constant_steer(dW, X)[0],
                                            np.linalg.norm((X - X.mean(0)) @ dW.T, axis=1).sum()), "squared"),
        ("5.1", "mean residual", lambda dW, X: (S.best_constant_steer(dW, X)[0],
                                                S.best_constant_steer(dW, X)[1] / len(X)), "sum over"),
        ("5.2", "weak property", weak_property, "passed an implementation"),
        ("5.2", "too strict", too_strict_property, "correct* implementation"),
        ("5.2", "not a hypothesis test", not_hypothesis, "@given"),
        ("3.1", "transposed", lambda *a: S.glu_jacobian(*a).T, "transposed"),
        ("3.1", "no gated path", lambda h, Wg, Wu, Wd: Wd @ ((Wg @ h / (1 + np.exp(-(Wg @ h))))[:, None] * Wu),
         "gated path is missing"),
        ("3.1", "silu not silu'", lambda h, Wg, Wu, Wd: Wd @ (
            ((Wg @ h) / (1 + np.exp(-(Wg @ h))) * (Wu @ h))[:, None] * Wg
            + ((Wg @ h) / (1 + np.exp(-(Wg @ h))))[:, None] * Wu), "derivative"),
        ("3.2", "reachable part", lambda Wd, dWd, M: M @ dWd.T - S.unreachable_part(Wd, dWd, M), "reachable"),
        ("3.2", "W W^T", lambda Wd, dWd, M: M @ dWd.T - (M @ dWd.T) @ (Wd @ Wd.T).T, "not a projector"),
        ("4.1", "post-block", always_layer("post_block"), "post-block steering"),
        ("4.1", "always layer 0", always_layer("pre_mlp"), "rank d"),
        ("4.1", "attention output", lambda p: (S.find_unreachable_site(p)[0].replace("pre_mlp", "hook_attn_out"),
                                               "column space of W_d"), "skip connection"),
        ("4.1", "no reason", right_site_no_reason, "column space"),
        ("5.3", "shift only", lambda h, D, U, phi: phi(h @ D.T) @ U.T, "missed skip connection"),
        ("5.3", "phi outside", lambda h, D, U, phi: h + phi(h @ D.T @ U.T), "bottleneck"),
        ("5.3", "transposed", lambda h, D, U, phi: h + phi(h @ D) @ U, "h @ D.T"),
        ("5.4", "DiReFT", lambda h, R, W, b: h + (h @ W.T + b) @ R, "DiReFT"),
        ("5.4", "sign", lambda h, R, W, b: 2 * h - S.loreft(h, R, W, b), "sign error"),
        ("5.4", "no skip", lambda h, R, W, b: S.loreft(h, R, W, b) - h, "missed skip"),
        ("5.5", "one matrix", lambda d, L, r: d * L if r is None else r * d * L, "two matrices"),
        ("5.5", "off by one", lambda d, L, r: d * L if r is None else 2 * r * d * (L - 1), "off by one"),
        ("6.1", "not orthonormal", lambda D, B: D - D @ B @ B.T, "not orthonormal"),
        ("6.1", "kept the overlap", lambda D, B: D - S.project_read(D, B), "kept the part"),
        ("6.2", "not orthonormal", lambda U, B: U - B @ (B.T @ U), "not orthonormal"),
        ("6.2", "kept the overlap", lambda U, B: U - S.project_write(U, B), "kept the part"),
        ("9.1", "no mean term", lambda g, x, w, eps: (g * w / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps),
                                                      S.rms_norm_vjp(g, x, w, eps)[1]), "mean term"),
        ("9.1", "dw per token", lambda g, x, w, eps: (S.rms_norm_vjp(g, x, w, eps)[0],
                                                      g * x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps)),
         "sum dw over the rows"),
        ("9.1", "dw of raw x", lambda g, x, w, eps: (S.rms_norm_vjp(g, x, w, eps)[0], np.sum(g * x, axis=0)),
         "not g * x"),
    ]


@pytest.mark.skipif(S is None, reason=NO_SOLUTIONS)
@pytest.mark.parametrize("number, label, wrong, hint", [
    pytest.param(n, label, fn, hint, id=f"{n}-{label}") for n, label, fn, hint in _wrong_answers()])
def test_wrong_answer(number, label, wrong, hint):
    checker = EXERCISES[number][1]
    with pytest.raises(ExerciseFailed) as err:
        checker(wrong)
    assert f"Exercise {number}" in str(err.value)
    assert hint.lower() in str(err.value).lower(), f"expected a hint about {hint!r}, got: {err.value}"


@pytest.mark.skipif(S is None, reason=NO_SOLUTIONS)
def test_every_exercise_has_wrong_answers():
    covered = {n for n, *_ in _wrong_answers()}
    assert covered == set(EXERCISES)


# ---------------------------------------------------------------- what students start from


def stub_pages():
    return sorted(STUBS.glob("ch[0-9][0-9]_*.py"))


@pytest.mark.parametrize("number", by_number(EXERCISES))
def test_stub(number):
    """The stub exists and the checker reports it as not implemented, never as a pass."""
    stubs = load_answers(STUBS, NAMES)
    name, checker, _ = EXERCISES[number]
    assert name in stubs.functions, f"examples/exercises/ has no stub {name!r} for Exercise {number}"
    with pytest.raises(ExerciseFailed, match=rf"Exercise {number}: not implemented yet \(Exercise {number}:"):
        checker(stubs.functions[name][0])


@pytest.mark.parametrize("page", stub_pages(), ids=lambda p: p.stem)
def test_stub_runs_as_a_script(page):
    """Run as a script (or a notebook), a stub's check cells run: the first says "not implemented"
    (rejects a stub that fails to import, or whose check cells never run)."""
    first = next(n for n, (name, _, _) in EXERCISES.items() if f"def {name}(" in page.read_text("utf8"))
    with pytest.raises(ExerciseFailed, match=rf"Exercise {first}: not implemented yet"):
        runpy.run_path(str(page), run_name="__main__")


@pytest.mark.parametrize("page", stub_pages(), ids=lambda p: p.stem)
def test_stub_is_a_percent_notebook(page, tmp_path):
    """Each stub is jupytext percent format: a markdown cell states each exercise before the
    code cell defining its function, and the .ipynb copy runs the same code as the script."""
    source = page.read_text("utf8")
    cells = percent_cells(source)
    assert source.startswith("# %% [markdown]") and cells[0][0] == "markdown"
    for number, (name, _, _) in EXERCISES.items():
        if f"def {name}(" not in source:
            continue
        code_at = next(i for i, (kind, text) in enumerate(cells) if kind == "code" and f"def {name}(" in text)
        statement = cells[code_at - 1]
        assert statement[0] == "markdown" and f"Exercise {number}" in statement[1], \
            f"{page.name}: no markdown statement of Exercise {number} right before `def {name}`"
    [notebook] = write_notebooks(page.parent, tmp_path) and [tmp_path / (page.stem + ".ipynb")]
    nb = json.loads(notebook.read_text("utf8"))
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 4)
    assert [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]] == cells
    namespace = {"__name__": "graded"}  # not __main__: defines the functions, skips the checks
    exec("\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"), namespace)
    assert all(callable(namespace[name]) for name, _, _ in EXERCISES.values() if f"def {name}(" in source)
    try:
        import nbformat
    except ImportError:
        return  # the structure above is what nbformat 4.4 requires; validate where it is installed
    nbformat.validate(nbformat.reads(notebook.read_text("utf8"), as_version=4))


def test_notebook_command_writes_every_page(tmp_path, capsys):
    """``ministeer exercises notebook DIR`` writes one .ipynb per stub."""
    shutil.copytree(STUBS, tmp_path / "my_answers")
    assert main(["notebook", str(tmp_path / "my_answers")]) == 0
    written = sorted(p.stem for p in (tmp_path / "my_answers").glob("*.ipynb"))
    assert written == [p.stem for p in stub_pages()]
    assert capsys.readouterr().out.count("wrote ") == len(written)


# ---------------------------------------------------------------- grading, as docs/exercises.md says

RIGHT_2_1 = "return x @ dW.T"
WRONG_2_1 = "return x @ (W + dW).T"  # the fine-tuned output, not the shift


def answer(folder, page, number, body):
    """Replace Exercise N.M's `raise NotImplementedError(...)` line in a copied stub with ``body``."""
    path = folder / page
    lines = path.read_text("utf8").splitlines(keepends=True)
    [i] = [i for i, line in enumerate(lines) if f'NotImplementedError("Exercise {number}:' in line]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = f"{indent}{body}\n"
    path.write_text("".join(lines), "utf8")


def test_grading_an_untouched_copy_fails_and_names_its_files(tmp_path, capsys, monkeypatch):
    """`cp -r examples/exercises my_answers; ministeer exercises`: every exercise fails as "not
    implemented yet", and the first line names the graded files (rejects grading the solutions)."""
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2  # no my_answers/ yet: says how to make it
    assert "cp -r examples/exercises my_answers" in capsys.readouterr().err
    shutil.copytree(STUBS, tmp_path / "my_answers")
    assert main([]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Grading my_answers/: " + ", ".join(p.name for p in stub_pages())
    assert out[-1] == f"0/{len(EXERCISES)} exercises passed ({len(EXERCISES)} not implemented yet)."


def test_grading_a_wrong_then_a_right_answer(tmp_path, capsys):
    """A wrong answer fails with its hint; the right one passes; the others stay unimplemented."""
    folder = tmp_path / "my_answers"
    shutil.copytree(STUBS, folder)
    answer(folder, "ch02_weight_updates_as_shifts.py", "2.1", WRONG_2_1)
    assert main([str(folder), "--only", "2.1"]) == 1
    out = capsys.readouterr().out
    assert "Hint: that is the fine-tuned output itself" in out and "0/1 exercises passed." in out
    answer_file = folder / "ch02_weight_updates_as_shifts.py"
    answer_file.write_text(answer_file.read_text("utf8").replace(WRONG_2_1, RIGHT_2_1), "utf8")
    assert main([str(folder), "--only", "2.1"]) == 0
    assert "✓ Exercise 2.1" in capsys.readouterr().out
    _, results = grade(folder)
    assert results["2.1"][1] is None and "not implemented yet" in results["2.2"][1]


def test_the_header_comes_before_any_pass_message(tmp_path, capsys):
    """The "Grading ..." line is the first line even when a checker passes and prints its
    "✓ ... passed" (rejects grading first and naming the files afterwards)."""
    folder = tmp_path / "my_answers"
    shutil.copytree(STUBS, folder)
    answer(folder, "ch02_weight_updates_as_shifts.py", "2.1", RIGHT_2_1)
    assert main([str(folder), "--only", "2.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"Grading {folder}/: ") and out[1].startswith("✓ Exercise 2.1"), out
    assert out[-1] == "1/1 exercises passed."


def test_a_broken_file_is_named(tmp_path, capsys):
    """A file that does not load is reported by name, and its exercises fail (not a crash)."""
    shutil.copytree(STUBS, tmp_path / "my_answers")
    (tmp_path / "my_answers" / "ch06_joint_adaptation.py").write_text("def project_read(:\n", "utf8")
    assert main([str(tmp_path / "my_answers"), "--only", "6.1"]) == 1
    out = capsys.readouterr().out
    assert "ch06_joint_adaptation.py did not load: SyntaxError" in out and "no function named 'project_read'" in out


def _pytest(args, cwd, env_extra=None):
    env = dict(os.environ, **{NESTED: "1"}, **(env_extra or {}))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get(NESTED)), reason="already inside a pytest run started by this test")
def test_pytest_grades_the_students_folder(tmp_path):
    """``pytest -m exercise_2_1`` as docs/exercises.md writes it grades ``my_answers/`` where it
    runs, ``--exercises=DIR`` another folder. The header names the graded files first; an
    unimplemented, a wrong and a right answer give fail, fail, pass."""
    folder = tmp_path / "my_answers"
    shutil.copytree(STUBS, folder)
    answer(folder, "ch02_weight_updates_as_shifts.py", "2.1", RIGHT_2_1)
    answer(folder, "ch02_weight_updates_as_shifts.py", "2.3", "return x @ dW.T")  # the output shift
    select = ["-m", "exercise_2_1 or exercise_2_2 or exercise_2_3", "--rootdir", str(ROOT),
              str(ROOT / "tests" / "test_exercises.py")]
    for args, graded in ((["-q"], "my_answers"), ([f"--exercises={folder}"], str(folder))):  # -q hides headers
        out = _pytest(select + args, tmp_path).stdout
        assert "2 failed, 1 passed" in out, out[-3000:]
        assert out.startswith(f"Grading {graded}/: ch01_model_and_sites.py, ch02_"), out[:500]
        assert "Exercise 2.2: not implemented yet" in out
        assert "Hint: that is the output shift dW x" in out


@pytest.mark.slow
@pytest.mark.skipif(S is None, reason=NO_SOLUTIONS)
@pytest.mark.skipif(bool(os.environ.get(NESTED)), reason="already inside a pytest run started by this test")
def test_suite_passes_without_solutions(tmp_path):
    """An instructor deletes solutions.py: the exercise and docs tests still pass, the
    checkers' self-tests skip with a one-line reason (rejects any import of the solutions
    outside them, and any docs link to the file)."""
    copy = tmp_path / "repo"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "site", "runs")
    for name in ("ministeer", "tests", "docs", "examples", "scripts"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, copy / name, ignore=skip)
    for name in ("conftest.py", "pyproject.toml", "README.md", "mkdocs.yml"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, copy / name)
    (copy / "ministeer" / "exercises" / "solutions.py").unlink()
    for path in copy.rglob("*.py"):  # nothing else imports it (docs links: test_docs.py, run below)
        imports = re.findall(r"^\s*(?:from|import)\s.*\bsolutions\b", path.read_text("utf8"), re.M)
        assert path.name == "test_exercises.py" or not imports, f"{path.relative_to(copy)}: {imports}"
    where = subprocess.run([sys.executable, "-c", "import ministeer; print(ministeer.__file__)"], cwd=copy,
                           capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(copy), "the copy must import its own ministeer"
    run = _pytest(["-q", "-rs", "tests/test_exercises.py", "tests/test_docs.py", "docs/exercises.md"], copy)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"SKIPPED [{len(EXERCISES)}] tests/test_exercises.py" in run.stdout and NO_SOLUTIONS in run.stdout


def test_markers_declared(pytestconfig):
    declared = "\n".join(pytestconfig.getini("markers"))
    for number in EXERCISES:
        assert marker(number) + ":" in declared, f"declare the marker {marker(number)} in pyproject.toml"


# ---------------------------------------------------------------- grading a whole class

def _class_of_three(tmp_path):
    """alice: the reference answers; bob: the stubs with 2.1 answered; carol: page 6 does not parse."""
    class_dir = tmp_path / "class"
    (class_dir / "alice").mkdir(parents=True)
    shutil.copy(Path(S.__file__), class_dir / "alice" / "answers.py")
    shutil.copytree(STUBS, class_dir / "bob")
    answer(class_dir / "bob", "ch02_weight_updates_as_shifts.py", "2.1", RIGHT_2_1)
    shutil.copytree(STUBS, class_dir / "carol")
    (class_dir / "carol" / "ch06_joint_adaptation.py").write_text("def project_read(:\n", "utf8")
    (class_dir / ".git").mkdir()  # not a student
    return class_dir


@pytest.mark.skipif(S is None, reason=NO_SOLUTIONS)
def test_grading_a_class_writes_one_table(tmp_path, capsys, monkeypatch):
    """``ministeer exercises --class DIR --out OUT``: one row per student folder, ✓/✗ per
    exercise, the count, the first failing hint (a file that did not load first), in
    grades.md and grades.csv, both through the atomic writer. Rejects: grading one
    student's files for all, a column off by one, a load error hidden behind "not
    implemented yet", counting hidden folders as students, and a plain ``write_text``."""
    import ministeer.exercises.classroom as classroom
    written = []
    real = classroom.atomic_write
    monkeypatch.setattr(classroom, "atomic_write", lambda path, write: (written.append(Path(path).name),
                                                                        real(path, write)))
    class_dir = _class_of_three(tmp_path)
    assert main(["--class", str(class_dir), "--out", str(tmp_path / "out")]) == 0
    assert sorted(written) == ["grades.csv", "grades.md"]
    out = capsys.readouterr().out
    assert "✓ Exercise" not in out  # the checkers' pass messages stay out of the class summary
    n = len(EXERCISES)
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "out" / "grades.csv").open(encoding="utf8"))}
    assert list(rows) == ["alice", "bob", "carol"]
    marks = lambda student: {number: rows[student][number] for number in EXERCISES}
    assert marks("alice") == {number: "✓" for number in EXERCISES}
    assert rows["alice"]["passed"] == f"{n}/{n}" and rows["alice"]["first failing hint"] == ""
    assert marks("bob") == {number: "✓" if number == "2.1" else "✗" for number in EXERCISES}
    assert rows["bob"]["passed"] == f"1/{n}"
    assert rows["bob"]["first failing hint"].startswith("Exercise 1.1: not implemented yet")
    assert marks("carol") == {number: "✗" for number in EXERCISES}
    assert rows["carol"]["first failing hint"].startswith("ch06_joint_adaptation.py did not load: SyntaxError")
    table = (tmp_path / "out" / "grades.md").read_text("utf8").splitlines()
    assert table[0] == "| student | " + " | ".join(EXERCISES) + " | passed | first failing hint |"
    assert table[2] == "| alice | " + " | ".join("✓" * n) + f" | {n}/{n} |  |"
    bob = table[3].split(" | ")
    assert bob[0] == "| bob" and bob[1 + list(EXERCISES).index("2.1")] == "✓" and bob[-2] == f"1/{n}"
    assert len(table) == 5 and table[4].startswith("| carol | ✗ |")
    assert f"alice: {n}/{n}" in out and f"wrote {tmp_path / 'out' / 'grades.md'}" in out


def test_grading_a_class_refuses_bad_folders(tmp_path, capsys):
    """No class folder, or one with no student folders: one line, exit 2, nothing written;
    ``--class`` with a PATH or ``--only`` is a usage error (rejects grading the wrong thing)."""
    from ministeer.usage import UsageError
    assert main(["--class", str(tmp_path / "missing")]) == 2
    assert "no class folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--class", str(tmp_path / "empty")]) == 2
    assert "no student folders" in capsys.readouterr().err and not list((tmp_path / "empty").iterdir())
    for argv in (["x", "--class", str(tmp_path)], ["--class", str(tmp_path), "--only", "2.1"], ["--out", "x"]):
        with pytest.raises(UsageError):
            main(argv)


def test_each_chapter_has_one_name():
    """Page ``docs/NN-slug.md``, stub ``examples/exercises/chNN_slug.py`` and checkers
    ``ministeer/exercises/chNN_slug.py`` (rejects a chapter known by three names)."""
    checkers = sorted(p.name for p in (ROOT / "ministeer" / "exercises").glob("ch*.py"))
    assert [p.name for p in stub_pages()] == checkers
    for name in checkers:
        page = ROOT / "docs" / f"{name[2:4]}-{name[5:-3].replace('_', '-')}.md"
        assert page.exists(), f"{name}: no docs page {page.name}"
