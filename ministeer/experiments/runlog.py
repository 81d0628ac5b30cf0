"""The run log of ``ministeer compare``: one JSON line per finished run, only ever appended.

A log that holds runs is never truncated or deleted: a start without ``--resume`` is refused
(``check_log``), and ``--fresh`` renames the old log aside (``move_aside``). Each line is
fsynced as it is written, so a crash can cut only the last line, which ``compare.read_log``
skips. docs/guarantees.md states the promise; ``tests/test_safety.py`` checks it.
"""
import json
import os
import time
from pathlib import Path

from ..usage import UsageError


def logged_lines(path):
    """How many lines the log at ``path`` holds (0 when it is missing or empty)."""
    path = Path(path)
    return len(path.read_bytes().splitlines()) if path.is_file() else 0


def check_log(path, resume):
    """Refuse (``UsageError``) to start afresh into a log that holds runs: it is never emptied."""
    n = logged_lines(path) if path else 0
    if n and not resume:
        raise UsageError(f"{str(path)!r} already holds {n} run(s); add --resume to continue them, or --fresh "
                         f"to move that log aside (to {Path(path).stem}.<time>.jsonl) and start over")


def move_aside(path):
    """Rename a log that holds runs to ``<stem>.<UTC time>.jsonl`` beside it (never deleted); return the new path."""
    path = Path(path)
    if not logged_lines(path):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}.{stamp}-{n}{path.suffix}")
    os.replace(path, target)
    return target


def append_record(log_path, record):
    """Append one finished run to the JSONL log and fsync it: the log only grows, line by line
    (a crash can cut only the last line, which ``read_log`` skips)."""
    with open(log_path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())
