"""Grading a whole class: every student's folder under one directory, into one table.

``ministeer exercises --class DIR`` grades each folder ``DIR/<student>/`` exactly as
``ministeer exercises DIR/<student>`` would, and writes ``grades.md`` and ``grades.csv``
(into ``DIR``, or ``--out``): one row per student, one column per exercise (✓ or ✗), the
number passed, and the student's first failing hint, the one to read first (a file that did
not load comes before any exercise).
"""
import contextlib
import csv
import io
from pathlib import Path

from ..io import atomic_write
from . import EXERCISES, grade

TABLE_NAMES = ("grades.md", "grades.csv")
PASS, FAIL = "✓", "✗"


def student_folders(class_dir):
    """The student folders under ``class_dir``, by name (hidden and ``_`` folders skipped)."""
    class_dir = Path(class_dir)
    if not class_dir.is_dir():
        raise FileNotFoundError(f"no class folder at {str(class_dir)!r}: give a folder holding one folder per student")
    folders = sorted(p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not folders:
        raise FileNotFoundError(f"no student folders in {str(class_dir)!r}: expected one folder of .py files per "
                                "student, e.g. class/alice/ch01_model_and_sites.py")
    return folders


def grade_student(folder):
    """One row: ``{"student", exercise number: True/False, ..., "passed", "first_hint"}``.

    The checkers' pass messages and whatever the student's code prints are swallowed: the
    table is the output.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        answers, results = grade(folder)
    row = {"student": Path(folder).name}
    row.update({number: msg is None for number, (_, msg) in results.items()})
    row["passed"] = sum(msg is None for _, msg in results.values())
    failures = [f"{path.name} did not load: {why}" for path, why in answers.errors.items()]
    failures += [msg for _, msg in results.values() if msg]
    if not answers.files:
        failures.insert(0, "no .py files in the student's folder")
    row["first_hint"] = failures[0] if failures else ""
    return row


def grade_class(class_dir):
    """One row per student folder under ``class_dir`` (see ``grade_student``)."""
    return [grade_student(folder) for folder in student_folders(class_dir)]


def _header():
    return ["student", *EXERCISES, "passed", "first failing hint"]


def _cells(row):
    marks = [PASS if row[number] else FAIL for number in EXERCISES]
    return [row["student"], *marks, f"{row['passed']}/{len(EXERCISES)}", row["first_hint"]]


def _one_line(text):
    return " ".join(str(text).split())


def _md_cell(text):
    return _one_line(text).replace("|", "\\|")  # a literal pipe would end the cell


def to_markdown(rows):
    header = _header()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in _cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_header())
    writer.writerows(_cells(row) for row in rows)
    return buffer.getvalue()


def write_tables(rows, out):
    """Write ``grades.md`` and ``grades.csv`` into ``out``, each atomically; returns their paths."""
    paths = [Path(out) / name for name in TABLE_NAMES]
    for path, text in zip(paths, (to_markdown(rows), to_csv(rows))):
        atomic_write(path, lambda tmp, text=text: Path(tmp).write_text(text, "utf8"))
    return paths


def main(class_dir, out=None):
    """``ministeer exercises --class DIR [--out DIR]``: grade, print one line per student, write the tables."""
    rows = grade_class(class_dir)
    for row in rows:
        print(f"{row['student']}: {row['passed']}/{len(EXERCISES)}"
              + (f"  first failure: {_one_line(row['first_hint'])}" if row["first_hint"] else ""))
    for path in write_tables(rows, out or class_dir):
        print(f"wrote {path}")
    return 0
