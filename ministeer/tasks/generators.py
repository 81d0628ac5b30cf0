"""Four synthetic tasks in the spirit of the paper's benchmarks, in factorized formats.

Each task draws a *problem* from a seeded RNG and renders it in one of its *formats*: a
prompt *notation* and an answer *style*. The prompt ends with an explicit style cue
(``|num``, ``|say`` ...), so the model is told which answer style to produce. Formats
0..8 are the grid of 3 notations × 3 styles, numbered ``fmt = 3 * notation + style``;
the base model is pretrained on formats 1..8 (``PRETRAINED``, in
``ministeer/experiments/pretrain.py``).

Format 9 is the **benchmark pair** (``BENCHMARK``): notation 0 with a fourth answer style,
*boxed* (cue ``|box``, answer ``[...]`` around style 0's answer, as GSM8K and MATH
answers are boxed), which pretraining never shows with any notation of any task. The
base computes the answer (a linear probe reads it, ``experiments/gates.py``) and writes
it in a style it knows, so zero-shot it scores 0% exact match and high under the
official extraction; adapting it to the benchmark is elicitation, as in the paper: the
skill is there, the format must be learned (docs/results.md). Format 0 = (notation 0,
style 0) is never pretrained either, but the base composes it by itself (92-98%
zero-shot), so it would leave nothing to elicit.

================  ==============================================  ==============
task              format 9 (prompt -> completion)                 paper analogue
================  ==============================================  ==============
``listops``       ``max(3,min(4,7),2)|box`` -> ``[3]``            LRA ListOps
``boolq``         ``a1,f0. f 3?|box`` -> ``[f0 false]``            BoolQ
``winogrande``    ``tom older than ann. younger: ann or tom?|box``  Winogrande
                  -> ``[ann]``
``gsm``           ``x=7;x+=5;x-=3;x*=2;x?|box`` -> ``[12,9,18]``  GSM8K
================  ==============================================  ==============

A problem's ``key`` is its format-free identity; the train/val/test split is a hash of
the key (``data.split_of``), so a test problem never appears in any split or format of
training. Keys are canonical: the Winogrande key is the stated fact alone (the question
asked and the option order are not in it), so an item and its option-swapped or
question-flipped twins always share a split; the BoolQ key sorts the passage's facts.
``label(problem)`` is the integer a linear probe reads (``experiments/gates.py``).
"""
NAMES = ("tom", "ann", "bob", "sue", "max", "eva", "ian", "joe", "kim", "leo", "mia", "ned",
         "pam", "roy", "sam", "tia", "ada", "ben", "dan", "gus", "liz", "meg", "ron", "zoe")
COMPARATIVES = (("older", "younger"), ("taller", "shorter"), ("faster", "slower"), ("bigger", "smaller"),
                ("richer", "poorer"), ("heavier", "lighter"))
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
N_NOTATIONS = N_STYLES = 3
BOXED = 3  # the benchmark's answer style: never pretrained, for any notation or task
BOXED_CUE = "box"
FORMATS = tuple((n, s) for n in range(N_NOTATIONS) for s in range(N_STYLES)) + ((0, BOXED),)
BENCHMARK = 9  # FORMATS[9] = (notation 0, boxed)
PRETRAINED = tuple(range(1, N_NOTATIONS * N_STYLES))  # formats 1..8; 0 and 9 are never pretrained


def pair_of(fmt):
    """``fmt -> (notation, style)``: ``3 * notation + style`` on the 3×3 grid, and 9 -> (0, boxed)."""
    return FORMATS[fmt]


def boxed(answer):
    return f"[{answer}]"


class Factorized:
    """A task rendered as notation × style; subclasses give ``notations``, ``styles``, ``CUES``."""
    n_formats = len(FORMATS)

    def render(self, problem, fmt):
        notation, style = pair_of(fmt)
        answers = self.styles(problem)
        cues, answers = self.CUES + (BOXED_CUE,), answers + (boxed(answers[0]),)
        return self.notations(problem)[notation] + "|" + cues[style], answers[style]

# ---------------------------------------------------------------- ListOps


def listops_apply(op, values):
    """MIN, MAX, MED (lower median) and SM (sum mod 10) over digits, as in LRA ListOps."""
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    if op == "med":
        return sorted(values)[(len(values) - 1) // 2]
    if op == "sm":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}; expected min, max, med or sm")


def listops_value(tree):
    """A tree is a digit or ``(op, [children])``."""
    if isinstance(tree, int):
        return tree
    op, args = tree
    return listops_apply(op, [listops_value(a) for a in args])


# The operators problems are drawn with. LRA's SM (sum mod 10) is left out: after 20 000
# pretraining steps the 4x64 base scored 10-19% on problems with SM against 77-100% with
# the others (docs/results.md), so SM items would measure teaching, not elicitation.
LISTOPS_OPS = ("min", "max", "med")


def _listops_tree(rng, depth):
    op = LISTOPS_OPS[rng.integers(len(LISTOPS_OPS))]
    args = []
    for _ in range(int(rng.integers(2, 4))):
        nest = depth > 1 and rng.random() < 0.3
        args.append(_listops_tree(rng, depth - 1) if nest else int(rng.integers(10)))
    return (op, args)


def listops_call(tree):
    """``max(3,min(4,7),2)``: function-call notation."""
    if isinstance(tree, int):
        return str(tree)
    return f"{tree[0]}({','.join(listops_call(a) for a in tree[1])})"


def listops_brackets(tree):
    """``[max 3 [min 4 7] 2]``: LRA's bracket notation."""
    if isinstance(tree, int):
        return str(tree)
    return f"[{tree[0]} {' '.join(listops_brackets(a) for a in tree[1])}]"


def listops_postfix(tree):
    """``3 4 7 min 2 max:3``: postfix, each operator followed by ``:`` and its arity."""
    if isinstance(tree, int):
        return str(tree)
    return " ".join(listops_postfix(a) for a in tree[1]) + f" {tree[0]}:{len(tree[1])}"


class ListOps(Factorized):
    """Nested MIN/MAX/MED over digits (``LISTOPS_OPS``), at most two levels deep."""
    name = "listops"
    CUES = ("num", "say", "word")

    def sample(self, rng):
        tree = _listops_tree(rng, depth=int(rng.integers(1, 3)))
        while len(listops_call(tree)) > 22:  # keep sequences short
            tree = _listops_tree(rng, depth=2)
        return tree

    def key(self, tree):
        return listops_call(tree)

    def label(self, tree):
        return listops_value(tree)

    def notations(self, tree):
        return listops_call(tree), listops_brackets(tree), listops_postfix(tree)

    def styles(self, tree):
        value = listops_value(tree)
        return str(value), f"it is {value}", DIGIT_WORDS[value]

# ---------------------------------------------------------------- BoolQ-like


class BoolQ(Factorized):
    """Who has what: a passage of 2-3 facts and a yes/no question about one pair.

    Names are single letters and objects single digits, each fact written as one glued
    pair (``a1``: ``a`` has ``1``), and every answer style first restates the fact it
    looked up, then gives the verdict (``a1 false``), as a reader answering from a
    passage would. Each step of that answer is one attention hop: copy the asked name,
    find it in the passage and read the token after it (an induction step), compare
    that object with the asked one. A 4x64 model learns the chain; a one-hop verdict
    over three-letter names and objects stayed near 60% (docs/results.md).
    """
    name = "boolq"
    CUES = ("tf", "yn", "why")
    names, objects = tuple("abcdefghijkl"), tuple("0123456789")

    def sample(self, rng):
        n = int(rng.integers(2, 4))
        names = [self.names[i] for i in rng.choice(len(self.names), n, replace=False)]
        objects = [self.objects[i] for i in rng.choice(len(self.objects), n + 1, replace=False)]
        facts = tuple(zip(names, objects[:n]))
        who = names[int(rng.integers(n))]
        yes = bool(rng.random() < 0.5)
        others = [o for o in objects if o != dict(facts)[who]]  # someone else's, or nobody's
        what = dict(facts)[who] if yes else others[int(rng.integers(n))]
        return facts, who, what

    def key(self, problem):
        facts, who, what = problem  # fact order is not part of the identity: reordered twins share a split
        return ",".join(sorted(f"{a} {b}" for a, b in facts)) + f"|{who} {what}"

    def label(self, problem):
        facts, who, what = problem
        return int(dict(facts)[who] == what)

    def notations(self, problem):
        facts, who, what = problem
        pairs = [f"{a}{b}" for a, b in facts]
        return (",".join(pairs) + f". {who} {what}?", f"does {who} have {what}? " + ",".join(pairs) + ".",
                ";".join(pairs) + f". {who} has {what}?")

    def styles(self, problem):
        facts, who, _ = problem
        yes, fact = self.label(problem), f"{who}{dict(facts)[who]}"
        return (f"{fact} {'true' if yes else 'false'}", f"{fact} {'yes' if yes else 'no'}",
                f"{fact}, so {'yes' if yes else 'no'}")

# ---------------------------------------------------------------- Winogrande-like


class Winogrande(Factorized):
    """Two people, one comparative; which of the two fits the question."""
    name = "winogrande"
    CUES = ("who", "say", "full")

    def sample(self, rng):
        a, b = (NAMES[i] for i in rng.choice(len(NAMES), 2, replace=False))
        pair = COMPARATIVES[int(rng.integers(len(COMPARATIVES)))]
        ask_same = bool(rng.random() < 0.5)  # ask with the same word (answer a) or the opposite (b)
        swap = bool(rng.random() < 0.5)  # option order
        return a, b, pair, ask_same, swap

    def key(self, problem):
        a, b, pair, _, _ = problem  # the fact only: its question and option-order twins share a split
        return f"{a} {pair[0]} {b}"

    def answer(self, problem):
        a, b, _, ask_same, _ = problem
        return a if ask_same else b

    def label(self, problem):
        return NAMES.index(self.answer(problem))

    def notations(self, problem):
        a, b, (word, opposite), ask_same, swap = problem
        question = word if ask_same else opposite
        o1, o2 = (b, a) if swap else (a, b)
        return (f"{a} {word} than {b}. {question}: {o1} or {o2}?", f"{question}: {o1} or {o2}? {a} {word} than {b}.",
                f"{a} is {word}, {b} not. {question}?")

    def styles(self, problem):
        _, _, (word, opposite), ask_same, _ = problem
        right = self.answer(problem)
        return right, f"it is {right}", f"{right} is {word if ask_same else opposite}"

# ---------------------------------------------------------------- GSM8K-like


class GSM(Factorized):
    """A running total under 2-3 steps (+k, -k, *2); the worked answer lists every total.

    Start 1-9, every total in [0, 30): small enough that the base model learns the
    arithmetic in pretraining, large enough (~20k problems) for disjoint splits."""
    name = "gsm"
    CUES = ("csv", "eq", "so")
    limit = 30

    def sample(self, rng):
        start = x = int(rng.integers(1, 10))
        steps = []
        for _ in range(int(rng.integers(2, 4))):
            options = [("+", k) for k in range(1, 10) if x + k < self.limit]
            options += [("-", k) for k in range(1, 10) if x - k >= 0]
            options += [("*", 2)] if x * 2 < self.limit else []
            op, k = options[int(rng.integers(len(options)))]
            steps.append((op, k))
            x = gsm_step(x, op, k)
        return start, tuple(steps)

    def key(self, problem):
        start, steps = problem
        return f"{start}" + "".join(f"{op}{k}" for op, k in steps)

    def totals(self, problem):
        start, steps = problem
        out, x = [], start
        for op, k in steps:
            x = gsm_step(x, op, k)
            out.append(x)
        return out

    def label(self, problem):
        return self.totals(problem)[0]  # the first running total: what the first answer token begins

    def notations(self, problem):
        start, steps = problem
        words = {"+": "add", "-": "sub", "*": "mul"}
        return ("x=" + f"{start}" + "".join(f";x{op}={k}" for op, k in steps) + ";x?",
                f"{start} " + " ".join(f"{op}{k}" for op, k in steps),
                f"start {start} " + " ".join(f"{words[op]} {k}" for op, k in steps))

    def styles(self, problem):
        totals = [str(t) for t in self.totals(problem)]
        return ",".join(totals), "=" + "=".join(totals), " ".join(totals) + f" so {totals[-1]}"


def gsm_step(x, op, k):
    return {"+": x + k, "-": x - k, "*": x * k}[op]


TASKS = {t.name: t for t in (ListOps(), BoolQ(), Winogrande(), GSM())}


def get_task(name):
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    return TASKS[name]
