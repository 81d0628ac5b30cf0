"""One timed compare run in a process of its own, for ``ministeer bench --ab-malloc``.

    python -m ministeer.perf.malloc_child METHOD STEPS

The allocator tuning is process-wide and cannot be undone, so ``perf.ab.ab_malloc`` starts this
module once per sample, with ``MINISTEER_MALLOC`` set or not. It prints whether the tuning applied
and the run's wall and CPU milliseconds.
"""
import sys
import time

from .allocator import tune_allocator


def main(argv):
    method, steps = argv[0], int(argv[1])
    tuned = tune_allocator()  # before the run allocates anything
    from ..experiments.compare import Settings, run_one
    settings = Settings(steps=steps, n_train=400, n_test=40)
    wall, cpu = time.perf_counter(), time.process_time()
    run_one(method, "listops", 0, 2e-3, settings)
    print(tuned, 1e3 * (time.perf_counter() - wall), 1e3 * (time.process_time() - cpu))


if __name__ == "__main__":
    main(sys.argv[1:])
