"""pytest set-up for the whole repository: how many workers, grading exercises, and quiet docs code blocks.

It sits at the root, not in tests/, because pytest reads command-line options only from
plugins and root conftest files: ``pytest -m exercise_2_1 --exercises my_answers`` must
know ``--exercises`` before it collects anything.

Grading (docs/exercises.md): ``pytest -m exercise_2_1`` grades *your* answers in
``my_answers/``; ``--exercises DIR`` (or ``--exercises=DIR`` for a folder outside the
repository) names another file or folder, as does ``$MINISTEER_EXERCISES``. Without either, the grading tests skip: the
suite tests the checkers, never a student.
"""
import contextlib
import io
import os
from pathlib import Path

import pytest

# ---------------------------------------------------------------- workers (pytest-xdist's -n auto)


def pytest_xdist_auto_num_workers(config):
    """Workers for ``-n auto`` (pyproject's addopts): the whole suite (``pytest``, ``pytest -m
    claim``) runs on up to 4 processes, one per core; a selection of files or tests, a grading
    run (``-m exercise_2_1``) or ``-s`` runs in this process, so it starts at once and its
    prints show. Measured on 2 cores: the suite in 161 s instead of 220 s. More than 4 workers
    cannot help much: the three longest tests take 25-40 s each."""
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    grading = "exercise" in (config.getoption("markexpr") or "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not whole_suite or grading or config.getoption("capture") == "no" or cores < 2:
        return 0
    return min(cores, 4)


# ---------------------------------------------------------------- grading the student's files


def pytest_addoption(parser):
    parser.addoption("--exercises", metavar="DIR", default=None,
                     help="grade the exercise answers in DIR, a .py file or a folder (default when "
                          "-m selects an exercise marker: my_answers/, a copy of examples/exercises/)")


def exercises_source(config):
    """The file or folder to grade, as typed, or None when this run grades nothing."""
    from ministeer.exercises import default_source
    given = config.getoption("exercises")
    if given is None and "exercise" not in (config.getoption("markexpr") or ""):
        return None
    return given or default_source()


def pytest_sessionstart(session):
    """Every grading run first names the files it grades (also under -q, which hides headers)."""
    source = exercises_source(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if source is None or reporter is None:
        return
    from ministeer.exercises import AnswersNotFound
    from ministeer.exercises.grading import answer_files, describe
    try:
        line = describe(source, answer_files(Path(session.config.invocation_params.dir) / source))
    except AnswersNotFound as err:
        line = f"Grading nothing: {err}"
    reporter.write_line(line, bold=True)


@pytest.fixture(scope="session")
def student_answers(pytestconfig):
    """The student's functions (``ministeer.exercises.Answers``); skips unless this run grades."""
    from ministeer.exercises import EXERCISES, load_answers
    source = exercises_source(pytestconfig)
    if source is None:
        pytest.skip("grades a student's files only when asked: pytest -m exercise_2_1 [--exercises DIR]")
    try:
        return load_answers(Path(pytestconfig.invocation_params.dir) / source,
                            [name for name, _, _ in EXERCISES.values()])
    except FileNotFoundError as err:
        pytest.fail(str(err), pytrace=False)


# ---------------------------------------------------------------- docs code blocks keep quiet

try:  # pytest-markdown-docs 0.9 turns pytest's capture *off* while a block runs, so every
    # print() in the docs would land in the log; this runner captures it again and shows it
    # only when the block fails.
    from pytest_markdown_docs._runners import DefaultRunner, register_runner

    @register_runner(default=True)
    class QuietRunner(DefaultRunner):
        def runtest(self, test, args, **kwargs):
            self.printed = io.StringIO()
            with contextlib.redirect_stdout(self.printed):
                super().runtest(test, args, **kwargs)

        def repr_failure(self, test, excinfo, style=None):
            text = super().repr_failure(test, excinfo, style)
            printed = getattr(self, "printed", io.StringIO()).getvalue()
            return text + (f"\n---- printed by the block ----\n{printed}" if printed else "")
except ImportError:  # another version of the plugin: its own capture rules apply
    pass
