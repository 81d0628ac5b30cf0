"""Many independent jobs over worker processes: ``compare``'s runs, ``analyze``'s oracles.

Workers are spawned (not forked: each starts clean, with one BLAS thread) and ignore Ctrl-C;
the parent terminates them at once on it, so an interrupted command stops promptly and
keeps whatever its ``on_result`` already stored.
"""
import os
import signal
from multiprocessing import get_context

from ..usage import close, progress_bar, tick


def _ignore_sigint():  # workers leave Ctrl-C to the parent, which terminates them
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def for_each_result(fn, jobs, n_workers, on_result):
    """Call ``on_result(fn(job))`` for every job, in finishing order, over ``n_workers`` processes.

    Workers ignore Ctrl-C; the parent terminates them at once on it (or on any error),
    so an interrupted run stops promptly and keeps what ``on_result`` already stored."""
    if n_workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_result(fn(job))
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker; read when a worker imports numpy
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pool = get_context("spawn").Pool(min(n_workers, len(jobs)), initializer=_ignore_sigint)
    try:
        for result in pool.imap_unordered(fn, jobs):
            on_result(result)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def run_jobs_plain(fn, jobs, n_workers, desc=None):
    """``[fn(job) for job in jobs]`` in job order, over ``n_workers`` processes; with ``desc``,
    a progress bar (``usage.progress_bar``) counts the finished jobs."""
    results, bar = {}, progress_bar(len(jobs), desc, unit="job") if desc else None

    def store(result):
        results[result[0]] = result[1]
        tick(bar)
    indexed = [(i, job) for i, job in enumerate(jobs)]
    try:
        for_each_result(_Indexed(fn), indexed, n_workers, store)
    finally:
        close(bar)
    return [results[i] for i in range(len(jobs))]


class _Indexed:  # a picklable (i, job) -> (i, fn(job)) for spawn workers
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, item):
        return item[0], self.fn(item[1])
