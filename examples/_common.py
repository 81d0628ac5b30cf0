"""Shared by the examples: the ``--smoke`` switch (tiny settings, for tests/test_examples.py)."""
import argparse
import os


def parser(doc):
    """An ArgumentParser whose description is the example's docstring, with ``--smoke``.

    ``--smoke`` (or ``MINISTEER_EXAMPLES_SMOKE=1``) picks the smallest settings, so the
    test suite can run every example in a second or two.
    """
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", default=os.environ.get("MINISTEER_EXAMPLES_SMOKE") == "1",
                   help="smallest settings (what the test suite runs)")
    return p


def teacher_task(cfg, params, pattern="model.layers.*", scale=0.3, seed=0, prompt_len=4, new_tokens=6):
    """A task defined by a "fine-tuned" teacher: the base ``params`` plus a random update of the
    weights matching ``pattern`` (relative size ``scale``). Sequences are random prompts
    followed by the teacher's greedy continuation; the loss is on the continuation only.

    Returns ``(teacher_params, data, evaluate)``: ``data(step)`` -> ``{"tokens", "mask"}`` for
    ``fit``/``train_method``, and ``evaluate(logits_fn)`` -> the fraction of held-out
    continuation tokens where ``logits_fn(tokens)``'s argmax agrees with the teacher.
    """
    import numpy as np
    from ministeer.generate import generate
    from ministeer.theory.first_order import perturb, random_update

    teacher = perturb(params, random_update(params, pattern, seed=seed, scale=scale))

    def sequences(n, rng_seed):
        prompts = np.random.default_rng(rng_seed).integers(0, cfg.vocab_size, (n, prompt_len))
        tokens = np.asarray(generate(teacher, prompts, cfg, new_tokens))
        mask = np.zeros(tokens.shape)
        mask[:, prompt_len:] = 1.0  # supervise the teacher's continuation only
        return {"tokens": tokens, "mask": mask}

    def data(step):
        return sequences(16, [seed, 1, step])

    held_out = sequences(64, [seed, 2])

    def evaluate(logits_fn):
        tokens = held_out["tokens"]
        predicted = np.argmax(np.asarray(logits_fn(tokens[:, :-1])), axis=-1)  # next-token guesses
        where = held_out["mask"][:, 1:] > 0
        return float(np.mean(predicted[where] == tokens[:, 1:][where]))

    return teacher, data, evaluate
