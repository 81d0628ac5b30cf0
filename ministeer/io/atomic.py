"""Atomic, durable writes: every file ministeer writes goes through ``atomic_write``.

The data goes to a temporary file beside the target, is fsynced, then renamed over the
target, and the folder is fsynced after the rename. A crash at any moment leaves either the
old file or the new one, never a mixture, and a finished save survives a power cut.
``tests/test_safety.py`` fails for a module that writes a user-visible file any other way.
"""
import glob
import json
import os
import secrets
from pathlib import Path


def atomic_write(path, write):
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never a mixture. The
    file is fsynced before the rename and the folder after it, so a finished save survives
    a power cut. The temporary is created with the usual permissions (``0o666`` minus the
    umask, like ``open``), and temporaries left by a killed save of the same target are
    removed first (their names carry the writer's process id).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # 0o666 & ~umask
    try:
        write(str(tmp))
        _fsync(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    _fsync(path.parent)  # the rename itself is durable once the folder entry is on disk


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` through ``atomic_write``: results, tables, cards, JSON."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_atomic(path, obj, **dumps):
    """``json.dumps(obj, **dumps)`` plus a newline, written through ``atomic_write``."""
    write_text_atomic(path, json.dumps(obj, **dumps) + "\n")


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # folders cannot be opened on Windows: nothing to sync there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders
    finally:
        os.close(fd)


def remove_stale_temporaries(path):
    """Delete ``.<name>.<pid>.<random>.tmp`` files of ``path`` whose writing process is gone."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".")[0]
        if not (pid.isdigit() and _alive(int(pid))):
            try:
                tmp.unlink()
            except OSError:
                pass  # another process cleaned it first


def _alive(pid):
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would terminate the process
        return True  # a save in progress in another thread of this process
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or we cannot tell: leave it
    return True
