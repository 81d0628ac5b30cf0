"""Speed measurement, kept apart from the model: ``ministeer bench`` and what only it needs.

* ``bench.py``       -- ms per training step and per forward, against PyTorch eager.
* ``bench_torch.py`` -- the identical model in PyTorch (torch is never a dependency).
* ``allocator.py``   -- glibc malloc tuning, applied by ``ministeer bench`` only.

Method, tables and reasons: docs/performance.md.
"""
