"""Stub files as notebooks: the jupytext "percent" format, read and written by hand.

A stub is a plain Python file whose cells start with ``# %%`` (code) or ``# %% [markdown]``
(text, each line a ``#`` comment). It runs as a script and opens as a notebook in VS Code,
or in Jupyter with jupytext. ``ministeer exercises notebook DIR`` writes a ``.ipynb`` copy
of every stub, in nbformat 4 JSON, without Jupyter (``jupytext --to ipynb DIR/*.py`` does
the same where jupytext is installed).
"""
import sys
from pathlib import Path

from ..io import write_json_atomic


def percent_cells(source):
    """``[(kind, text)]`` of a percent-format file; kind is "code" or "markdown"."""
    cells, kind, lines = [], "code", []

    def close():
        text = "\n".join(lines).strip("\n")
        if text:
            cells.append((kind, text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            close()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        else:
            lines.append(line)
    close()
    return cells


def to_notebook(source):
    """nbformat 4.4 JSON (a dict) for a percent-format file."""
    def cell(kind, text):
        out = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
        return out | ({"execution_count": None, "outputs": []} if kind == "code" else {})
    return {"cells": [cell(k, t) for k, t in percent_cells(source)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"},
                         "jupytext": {"formats": "ipynb,py:percent"}},
            "nbformat": 4, "nbformat_minor": 4}


def write_notebooks(folder, out=None):
    """Write ``<stem>.ipynb`` for every stub in ``folder`` (into ``out``, default the same folder)."""
    folder = Path(folder)
    out = Path(out) if out else folder
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        target = out / (path.stem + ".ipynb")
        write_json_atomic(target, to_notebook(path.read_text("utf8")), indent=1)
        written.append(target)
    return written


def main(argv=()):
    """``ministeer exercises notebook DIR [--out OUT]``."""
    import argparse
    parser = argparse.ArgumentParser(prog="ministeer exercises notebook",
                                     description="Write a .ipynb copy of every exercise stub in DIR.")
    parser.add_argument("folder", help="a folder of stubs, e.g. my_answers (a copy of examples/exercises)")
    parser.add_argument("--out", help="where to write the notebooks (default: the same folder)")
    args = parser.parse_args(argv)
    if not Path(args.folder).is_dir():
        print(f"ministeer exercises notebook: no folder {args.folder!r}", file=sys.stderr)
        return 2
    for path in write_notebooks(args.folder, args.out):
        print(f"wrote {path}")
    return 0
