"""User errors on the command line: one line on stderr and exit status 2, never a traceback.

Every subcommand builds its parser with ``Parser`` (argparse, but an error raises
``UsageError`` instead of printing the usage block) and checks its inputs with the
argument types below *before* any work starts, so a typo never costs a finished run.
``ministeer.cli.main`` turns a ``UsageError`` into ``ministeer <command>: <message>`` and
exit 2. Imports nothing from ministeer, so any module may use it.
"""
import argparse
import os
from pathlib import Path


class UsageError(ValueError):
    """A bad command-line argument: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def positive_int(text):
    """argparse type: an int >= 1 (``--steps 0``, ``--repeats 0``, ``--batch-size 0`` are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
