"""Grading a student's files: load their functions, run the checkers, say what was graded.

Grading always targets the student's own files, never the reference solutions: by default
the folder ``my_answers/`` (the copy of ``examples/exercises/`` that the docs tell students
to make), or any .py file or folder given on the command line (or in ``$MINISTEER_EXERCISES``). ``ministeer exercises`` and
``pytest -m exercise_2_1 --exercises DIR`` both go through ``load_answers`` and ``grade_one``.
"""
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import ExerciseFailed

DEFAULT_DIR = "my_answers"
ENV_VAR = "MINISTEER_EXERCISES"  # names the answers too, where no path is given
COPY_HINT = "cp -r examples/exercises my_answers"


class AnswersNotFound(FileNotFoundError):
    """The folder or file to grade does not exist (the message says how to create it)."""


@dataclass
class Answers:
    """What was found in the student's files.

    files     -- every .py file read, in order;
    functions -- {function name: (function, the file defining it)};
    errors    -- {file: why it could not be loaded} (a SyntaxError, a failing import).
    """
    source: Path
    files: list
    functions: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def describe(self):
        """The line every grading output starts with: which files are graded."""
        return describe(self.source, self.files)


def _load_file(path):
    # a fresh module name per file, so two folders with the same file names never collide
    name = f"_ministeer_answers_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # hypothesis (Exercise 5.2) looks functions up by module
    spec.loader.exec_module(module)  # as an import: `if __name__ == "__main__":` cells do not run
    return module


def default_source():
    """What to grade when no path is given: ``$MINISTEER_EXERCISES``, else ``my_answers``."""
    return os.environ.get(ENV_VAR) or DEFAULT_DIR


def answer_files(source=DEFAULT_DIR):
    """The .py files grading reads at ``source`` (a file or a folder); ``AnswersNotFound`` if absent."""
    path = Path(source)
    if not path.exists():
        raise AnswersNotFound(
            f"no answers to grade at {str(path)!r}. Copy the stubs first ({COPY_HINT}) and fill them "
            f"in, or name your file or folder: `ministeer exercises DIR`, `pytest -m exercise --exercises DIR`.")
    return sorted(f for f in path.glob("*.py") if not f.name.startswith("_")) if path.is_dir() else [path]


def describe(source, files):
    """The line every grading output starts with: what is graded."""
    if not Path(source).is_dir():
        return f"Grading {source}"
    return f"Grading {source}/: " + (", ".join(f.name for f in files) or "no .py files")


def load_answers(source=DEFAULT_DIR, wanted=()):
    """Read the functions named in ``wanted`` from ``source``, a .py file or a folder of them.

    A file that fails to load is recorded in ``Answers.errors`` instead of stopping the
    grading of the others. Raises ``AnswersNotFound`` if ``source`` does not exist.
    """
    answers = Answers(Path(source), answer_files(source))
    for f in answers.files:
        try:
            module = _load_file(f)
        except Exception as err:  # the student's file: any error is theirs to see, named
            answers.errors[f] = f"{type(err).__name__}: {err}"
            continue
        for name in wanted:
            if callable(getattr(module, name, None)) and name not in answers.functions:
                answers.functions[name] = (getattr(module, name), f)
    return answers


def grade_one(answers, number, name, checker, page):
    """Run one checker on the student's function; returns ``(file or None, None or failure message)``."""
    if name not in answers.functions:
        broken = "".join(f" {f} did not load ({why})." for f, why in answers.errors.items())
        return None, (f"Exercise {number}: no function named {name!r} in the graded files "
                      f"(see {page}).{broken}")
    fn, path = answers.functions[name]
    try:
        checker(fn)
    except ExerciseFailed as err:
        return path, str(err)
    return path, None
