"""Synthetic tasks for the toy-scale reproduction: generators, tokenizer, batches, accuracy.

>>> from ministeer.tasks import examples, encode
>>> ex = examples("listops", "train", 2, seed=0)
>>> encode(ex)["tokens"].shape[0]
2
"""
from .data import Example, batch_sampler, encode, examples, split_of
from .evaluate import accuracy, forced_exact_match, greedy_complete
from .generators import BENCHMARK, PRETRAINED, TASKS, get_task
from .tokenizer import TOKENIZER, CharTokenizer

TASK_NAMES = tuple(TASKS)

__all__ = ["BENCHMARK", "PRETRAINED", "TASKS", "TASK_NAMES", "TOKENIZER", "CharTokenizer", "Example", "accuracy",
           "batch_sampler", "encode", "examples", "forced_exact_match", "get_task", "greedy_complete", "split_of"]
