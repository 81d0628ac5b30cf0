"""User errors on the command line: one line on stderr and exit status 2, never a traceback.

Every subcommand builds its parser with ``Parser`` (argparse, but an error raises
``UsageError`` that points to ``--help`` instead of printing the usage block) and checks its
inputs with the typed, ranged argument types below *before* any work starts, so a typo never
costs a finished run. ``ministeer.cli.main`` turns a ``UsageError`` into
``ministeer <command>: <message>`` and exit 2. ``folder_lock`` keeps two commands from writing
into one folder at once; ``progress_bar`` is tqdm's bar, or nothing when tqdm is missing.
Imports nothing from ministeer, so any module may use it.
"""
import argparse
import contextlib
import math
import os
import sys
from pathlib import Path


class UsageError(ValueError):
    """A bad command-line argument: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``<message> (see <prog> --help)``, raised as ``UsageError``."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None


def positive_int(text):
    """argparse type: an int >= 1 (``--steps 0``, ``--repeats 0``, ``--batch-size 0`` are refused)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text):
    """argparse type: an int >= 0 (seeds, warmup steps, ``--save-every 0`` for never)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0 (a learning rate, a clipping norm); NaN and inf are refused."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def non_negative_float(text):
    """argparse type: a finite number >= 0 (a weight decay); NaN and inf are refused."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def existing_file(text):
    """argparse type: a file that exists (a checkpoint to read)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def existing_dir(text):
    """argparse type: a folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text!r}")
    return text


def check_writable(path, flag, suffixes=None):
    """Raise ``UsageError`` now if ``path`` could not be written at the end of the run.

    ``-`` (stdout) is always fine. The folder must exist or be creatable and be writable; the
    suffix must be one of ``suffixes`` if given. Nothing is created.
    """
    if path == "-":
        return
    target = Path(path)
    if suffixes and target.suffix not in suffixes:
        raise UsageError(f"{flag} {path!r}: expected a file ending in {' or '.join(suffixes)}")
    if target.is_dir():
        raise UsageError(f"{flag} {path!r} is a folder, expected a file")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the nearest existing ancestor: the one that must be writable
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path!r}: cannot write in {str(folder)!r}")


@contextlib.contextmanager
def folder_lock(folder, flag):
    """Hold an exclusive lock on ``folder`` (created if missing) while the block runs.

    A second command writing into the same folder is refused at once with a ``UsageError``
    naming ``flag`` (one line, exit 2), before it reads or writes anything there. The lock is
    ``flock`` on the folder itself, so no lock file is left behind, and the system releases it
    when the process ends, however it ends. POSIX only: elsewhere nothing is locked.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        yield folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"{flag} {str(folder)!r} is in use by another running ministeer command; "
                             "wait for it to finish or choose another folder") from None
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def progress_bar(total, desc, unit="it", initial=0):
    """A tqdm bar on stderr (redrawn every 15 s when stderr is not a terminal), or ``None``
    when tqdm is not installed: callers then run silently (``tick``/``close`` accept ``None``)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr,
                mininterval=0.1 if sys.stderr.isatty() else 15.0)


def tick(bar, n=1):
    if bar is not None:
        bar.update(n)


def close(bar):
    if bar is not None:
        bar.close()


def writable_folder(path):
    """Check that ``path`` can hold the outputs (``usage.check_writable``), then create it."""
    check_writable(Path(path) / "runs.jsonl", "--out")
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)
