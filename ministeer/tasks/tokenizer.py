"""A character-level tokenizer shared by every task and the shipped base model.

One token per character, plus four specials. A sequence is laid out as::

    <bos> prompt <sep> completion <eos> <pad> <pad> ...

The vocabulary is fixed (not learned from data), so the base checkpoint, the task
generators and the tests can never disagree about ids. Unknown characters raise a
``ValueError`` that names them and lists the alphabet.
"""
PAD, BOS, EOS, SEP = "<pad>", "<bos>", "<eos>", "<sep>"
SPECIALS = (PAD, BOS, EOS, SEP)  # ids 0..3; PAD must be 0
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz ()[],.;:?=+-*/|<>"


class CharTokenizer:
    def __init__(self, alphabet=ALPHABET):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("alphabet has repeated characters")
        self.alphabet = alphabet
        self.itos = list(SPECIALS) + list(alphabet)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = (self.stoi[s] for s in SPECIALS)

    @property
    def vocab_size(self):
        return len(self.itos)

    def encode(self, text):
        """Characters -> ids (no specials added)."""
        unknown = sorted({c for c in text if c not in self.stoi})
        if unknown:
            raise ValueError(f"characters {unknown} are not in the tokenizer alphabet "
                             f"{self.alphabet!r} (text: {text!r})")
        return [self.stoi[c] for c in text]

    def decode(self, ids, stop_at_eos=True):
        """Ids -> text. Specials are dropped; decoding stops at the first ``<eos>``."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside [0, {self.vocab_size})")
            if i == self.eos_id and stop_at_eos:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out)

    def encode_example(self, prompt, completion):
        """``(ids, n_prompt)``: ``<bos> prompt <sep> completion <eos>``; the first
        ``n_prompt`` ids (through ``<sep>``) are the prompt, the rest is supervised."""
        head = [self.bos_id] + self.encode(prompt) + [self.sep_id]
        return head + self.encode(completion) + [self.eos_id], len(head)


TOKENIZER = CharTokenizer()
