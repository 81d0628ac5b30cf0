"""Classroom exercises: a checker per exercise, in the ARENA manner (it takes *your* function).

In a notebook (or a stub file opened as one)::

    from ministeer.exercises import check_linear_shift
    check_linear_shift(my_linear_shift)      # prints a pass message, or raises with a hint

From the shell, grade *your* files, a copy of ``examples/exercises/``::

    cp -r examples/exercises my_answers
    ministeer exercises                       # grades my_answers/ (or: ministeer exercises DIR)
    pytest -m exercise_2_1                    # the same for one exercise (or: --exercises DIR)
    ministeer exercises notebook my_answers   # .ipynb copies of the stubs
    ministeer exercises --class class/        # every class/<student>/ into grades.md, grades.csv

Nothing here imports ``solutions.py``, the reference answers: an instructor may delete it.

``EXERCISES`` lists every exercise: number -> (function name, checker, docs page).
"""
import sys

from .ch01_model_and_sites import check_add_at_position, check_resid_post
from .ch02_weight_updates_as_shifts import check_first_order_shift, check_input_shift, check_linear_shift
from .ch03_glu_and_pre_mlp import check_glu_jacobian, check_unreachable_part
from .ch04_where_to_steer import UpdateProblem, check_find_unreachable_site, unreachable_norms, unreachable_site_problem
from .ch05_parameterizations import (BROKEN_CONSTANT_STEERS, check_best_constant_steer, check_constant_steer_property,
                         check_loreft, check_post_block_adapter, check_post_block_param_count)
from .ch06_joint_adaptation import check_project_read, check_project_write
from .ch09_block_backward import check_rms_norm_vjp
from .common import ExerciseFailed
from .grading import COPY_HINT, DEFAULT_DIR, Answers, AnswersNotFound, default_source, grade_one, load_answers

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
    "9.1": ("rms_norm_vjp", check_rms_norm_vjp, "docs/09-block-backward.md"),
}


def marker(number):
    """``"2.1" -> "exercise_2_1"``, the pytest marker that grades one exercise."""
    return "exercise_" + number.replace(".", "_")


def load(source=None):
    """Read the student's files at ``source`` (default: ``my_answers``) without grading them."""
    return load_answers(source or default_source(), [name for name, _, _ in EXERCISES.values()])


def grade_loaded(answers, only=None):
    """``{number: (file, None or failure)}``: run the checkers (each prints its pass message)."""
    return {number: grade_one(answers, number, *entry)
            for number, entry in EXERCISES.items() if not only or number in only}


def grade(source=None, only=None):
    """Grade the student's files at ``source`` (default: ``my_answers``):
    ``(Answers, {number: (file, None or failure)})``."""
    answers = load(source)
    return answers, grade_loaded(answers, only)


def main(argv=()):
    """``ministeer exercises [PATH] [--only 2.1 ...]``, ``--list``, ``--class DIR [--out DIR]``, or ``notebook DIR``."""
    from ..usage import Parser  # argparse whose errors are one line, exit 2 (ministeer.cli)
    argv = list(argv)
    if argv[:1] == ["notebook"]:
        from .notebook import main as notebook_main
        return notebook_main(argv[1:])
    parser = Parser(
        prog="ministeer exercises",
        description="Grade your exercise answers. `ministeer exercises notebook DIR` writes .ipynb copies.")
    parser.add_argument("source", nargs="?", default=None,
                        help=f"a .py file or a folder of them (default: {DEFAULT_DIR}/, made by `{COPY_HINT}`, "
                             "or $MINISTEER_EXERCISES)")
    parser.add_argument("--only", nargs="+", metavar="N.M", choices=list(EXERCISES),
                        help="grade only these exercises")
    parser.add_argument("--list", action="store_true", help="list the exercises and exit")
    parser.add_argument("--class", dest="class_dir", metavar="DIR",
                        help="grade every student folder under DIR (DIR/alice/, DIR/bob/, ...) into one table, "
                             "grades.md and grades.csv")
    parser.add_argument("--out", metavar="DIR", help="with --class: where to write the tables (default: the class DIR)")
    args = parser.parse_args(argv)
    if args.list:
        for number, (name, _, page) in EXERCISES.items():
            print(f"{number:<5} {name:<26} {page}   (pytest -m {marker(number)})")
        return 0
    if args.class_dir is not None or args.out is not None:
        return _grade_class(parser, args)
    try:
        answers = load(args.source)
    except AnswersNotFound as err:
        print(f"ministeer exercises: {err}", file=sys.stderr)
        return 2
    print(answers.describe())  # first, before any checker's pass message: what is being graded
    results = grade_loaded(answers, args.only)
    for path, why in answers.errors.items():
        print(f"✗ {path} did not load: {why}")
    failed = {number: (path, msg) for number, (path, msg) in results.items() if msg}
    for number, (path, msg) in failed.items():
        print(f"✗ {msg}" + (f"  [{path}]" if path else ""))
    todo = sum("not implemented yet" in msg for _, msg in failed.values())
    note = f" ({todo} not implemented yet)" if todo else ""
    print(f"{len(results) - len(failed)}/{len(results)} exercises passed{note}.")
    return 1 if failed else 0


def _grade_class(parser, args):
    if args.class_dir is None:
        parser.error("--out goes with --class DIR")
    if args.source is not None or args.only:
        parser.error("--class DIR grades every exercise of every student folder: give no PATH and no --only")
    from . import classroom
    try:
        return classroom.main(args.class_dir, args.out)
    except FileNotFoundError as err:
        print(f"ministeer exercises: {err}", file=sys.stderr)
        return 2


__all__ = ["EXERCISES", "BROKEN_CONSTANT_STEERS", "Answers", "AnswersNotFound", "ExerciseFailed", "UpdateProblem",
           "grade", "grade_loaded", "load", "load_answers",
           "marker", "unreachable_norms", "unreachable_site_problem"] + \
          [checker.__name__ for _, checker, _ in EXERCISES.values()]
