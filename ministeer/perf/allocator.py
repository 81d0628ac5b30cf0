"""glibc malloc tuning for ``ministeer bench`` (docs/performance.md, "The allocator")."""
import ctypes
import os
import sys


def tune_allocator():
    """Let glibc keep freed memory in the heap instead of returning it to the OS.

    NumPy allocates a fresh array for every intermediate. Above glibc's default mmap
    threshold each one is a fresh mapping whose pages fault in on first touch, which is
    slow on virtual machines: a [2048, 512] matmul plus bias add took 6.3 ms instead of
    1.8 ms here (docs/performance.md). Only the bench process is tuned, never an
    importing program; ``MINISTEER_MALLOC=0`` turns it off. Returns whether it applied.
    """
    if os.environ.get("MINISTEER_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
