"""Classroom exercises: a checker per exercise, in the ARENA manner (it takes *your* function).

In a notebook::

    from ministeer.exercises import check_linear_shift
    check_linear_shift(my_linear_shift)      # prints a pass message, or raises with a hint

From the shell, grade a file of answers (a copy of ``examples/exercises/``)::

    MINISTEER_EXERCISES=my_answers/ pytest tests/test_exercises.py -m exercise_2_1
    ministeer exercises my_answers/ --only 2.1

Without ``MINISTEER_EXERCISES`` the tests grade ``ministeer/exercises/solutions.py``, the
reference answers: delete that one module to hand the package to students.

``EXERCISES`` lists every exercise: number -> (function name, checker, docs page).
"""
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from .ch1_sites import check_add_at_position, check_resid_post
from .ch2_shifts import check_first_order_shift, check_input_shift, check_linear_shift
from .ch3_glu import check_glu_jacobian, check_unreachable_part
from .ch4_where import UpdateProblem, check_find_unreachable_site, unreachable_norms, unreachable_site_problem
from .ch5_params import (BROKEN_CONSTANT_STEERS, check_best_constant_steer, check_constant_steer_property,
                         check_loreft, check_post_block_adapter, check_post_block_param_count)
from .ch6_joint import check_project_read, check_project_write
from .common import ExerciseFailed

EXERCISES = {  # number -> (the function the student writes, its checker, the docs page)
    "1.1": ("resid_post", check_resid_post, "docs/01-model-and-sites.md"),
    "1.2": ("add_at_position", check_add_at_position, "docs/01-model-and-sites.md"),
    "2.1": ("linear_shift", check_linear_shift, "docs/02-weight-updates-as-shifts.md"),
    "2.2": ("first_order_shift", check_first_order_shift, "docs/02-weight-updates-as-shifts.md"),
    "2.3": ("input_shift", check_input_shift, "docs/02-weight-updates-as-shifts.md"),
    "3.1": ("glu_jacobian", check_glu_jacobian, "docs/03-glu-and-pre-mlp.md"),
    "3.2": ("unreachable_part", check_unreachable_part, "docs/03-glu-and-pre-mlp.md"),
    "4.1": ("find_unreachable_site", check_find_unreachable_site, "docs/04-where-to-steer.md"),
    "5.1": ("best_constant_steer", check_best_constant_steer, "docs/05-parameterizations.md"),
    "5.2": ("constant_steer_property", check_constant_steer_property, "docs/05-parameterizations.md"),
    "5.3": ("post_block_adapter", check_post_block_adapter, "docs/05-parameterizations.md"),
    "5.4": ("loreft", check_loreft, "docs/05-parameterizations.md"),
    "5.5": ("post_block_param_count", check_post_block_param_count, "docs/05-parameterizations.md"),
    "6.1": ("project_read", check_project_read, "docs/06-joint-adaptation.md"),
    "6.2": ("project_write", check_project_write, "docs/06-joint-adaptation.md"),
}

ENV_VAR = "MINISTEER_EXERCISES"


def marker(number):
    """``"2.1" -> "exercise_2_1"``, the pytest marker that grades one exercise."""
    return "exercise_" + number.replace(".", "_")


def _load_file(path):
    name = f"_ministeer_student_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so hypothesis and pickling can find it
    spec.loader.exec_module(module)
    return module


def load_answers(source=None):
    """``{function name: function}`` from ``source``: a .py file, a folder of them, or a module name.

    ``source=None`` reads the ``MINISTEER_EXERCISES`` environment variable and falls back
    to the reference solutions (``ImportError`` if an instructor removed them).
    """
    source = source or os.environ.get(ENV_VAR) or "ministeer.exercises.solutions"
    path = Path(source)
    if path.suffix == ".py" or path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"{ENV_VAR}={source!r}: no such file or folder")
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        modules = [_load_file(f) for f in files if not f.name.startswith("_")]
    else:
        modules = [importlib.import_module(source)]
    wanted = {name for name, _, _ in EXERCISES.values()}
    return {name: getattr(m, name) for m in modules for name in wanted if hasattr(m, name)}


def grade(source=None, only=None):
    """Run the checkers on the answers in ``source``; returns ``{number: None or error message}``."""
    answers = load_answers(source)
    results = {}
    for number, (name, checker, page) in EXERCISES.items():
        if only and number not in only:
            continue
        if name not in answers:
            results[number] = f"Exercise {number}: no function named {name!r} found (see {page})"
            continue
        try:
            checker(answers[name])
            results[number] = None
        except ExerciseFailed as err:
            results[number] = str(err)
    return results


def main(argv=()):
    """``ministeer exercises [PATH] [--only 2.1 ...]``: grade a file or folder of answers."""
    from ..usage import Parser, UsageError
    parser = Parser(prog="ministeer exercises",
                                     description="Grade exercise answers (default: the reference solutions).")
    parser.add_argument("source", nargs="?", help=f"a .py file or folder of answers (default: ${ENV_VAR} "
                                                  "or ministeer.exercises.solutions)")
    parser.add_argument("--only", nargs="+", metavar="N.M", choices=sorted(EXERCISES),
                        help="grade only these exercises")
    parser.add_argument("--list", action="store_true", help="list the exercises and exit")
    args = parser.parse_args(argv)
    if args.list:
        for number, (name, _, page) in EXERCISES.items():
            print(f"{number:<5} {name:<26} {page}   (pytest -m {marker(number)})")
        return 0
    if args.source and (args.source.endswith(".py") or "/" in args.source or os.sep in args.source) \
            and not Path(args.source).exists():
        raise UsageError(f"no such file or folder: {args.source!r} (a .py file or a folder of answers)")
    try:
        results = grade(args.source, args.only)
    except ImportError as err:  # a module name that does not import
        raise UsageError(f"cannot import answers from {args.source!r}: {err}") from None
    failed = {n: msg for n, msg in results.items() if msg}
    for msg in failed.values():
        print("✗", msg)
    print(f"{len(results) - len(failed)}/{len(results)} exercises passed.")
    return 1 if failed else 0


__all__ = ["EXERCISES", "BROKEN_CONSTANT_STEERS", "ExerciseFailed", "UpdateProblem", "grade", "load_answers",
           "marker", "unreachable_norms", "unreachable_site_problem"] + \
          [checker.__name__ for _, checker, _ in EXERCISES.values()]
