"""The toy-scale reproduction of the paper's comparison (docs/results.md).

* ``pretrain`` -- the shipped base model: a broad mixture of the four tasks in their
  non-benchmark formats (``ministeer pretrain``).
* ``compare``  -- every adaptation method on every task and seed (``ministeer compare``).
* ``analyze``  -- oracle analyses of a fully fine-tuned model (``ministeer analyze``).
"""
