"""Four synthetic tasks in the spirit of the paper's benchmarks (NOTES §8).

Each task draws a *problem* from a seeded RNG and renders it in one of several
*formats* (prompt and completion styles). Format 0 is the benchmark format that
``ministeer compare`` adapts to; it never appears in pretraining, which sees the
same skills in the other formats (``ministeer/experiments/pretrain.py``).

================  =========================================  ==============
task              format 0 (prompt -> completion)            paper analogue
================  =========================================  ==============
``listops``       ``max(3,min(4,7),2)`` -> ``3``             LRA ListOps
``boolq``         ``tom cat,ann dog. ann hat?`` -> ``false`` BoolQ
``winogrande``    ``tom older than ann. younger: ann or tom?``  Winogrande
                  -> ``ann``
``gsm``           ``x=7;x+=5;x-=3;x*=2;x?`` -> ``12,9,18``   GSM8K
================  =========================================  ==============

A problem's ``key`` is its format-free identity; the train/val/test split is a hash
of the key, so a test problem never appears in any split or format of training.
"""
NAMES = ("tom", "ann", "bob", "sue", "max", "eva", "ian", "joe", "kim", "leo", "mia", "ned",
         "pam", "roy", "sam", "tia", "ada", "ben", "dan", "gus", "liz", "meg", "ron", "zoe")
OBJECTS = ("cat", "dog", "hat", "pen", "cup", "car", "box", "key", "map", "bag", "egg", "fig")
COMPARATIVES = (("older", "younger"), ("taller", "shorter"), ("faster", "slower"), ("bigger", "smaller"),
                ("richer", "poorer"), ("heavier", "lighter"))

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


def _listops_tree(rng, depth):
    op = ("min", "max", "med", "sm")[rng.integers(4)]
    args = []
    for _ in range(int(rng.integers(2, 4))):
        nest = depth > 1 and rng.random() < 0.45
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


class ListOps:
    name = "listops"
    n_formats = 3

    def sample(self, rng):
        tree = _listops_tree(rng, depth=int(rng.integers(1, 4)))
        while len(listops_call(tree)) > 28:  # keep sequences short
            tree = _listops_tree(rng, depth=2)
        return tree

    def key(self, tree):
        return listops_call(tree)

    def render(self, tree, fmt):
        answer = str(listops_value(tree))
        return [(listops_call(tree), answer),
                (listops_brackets(tree), answer),
                (f"what is {listops_call(tree)}", f"it is {answer}")][fmt]

# ---------------------------------------------------------------- BoolQ-like


class BoolQ:
    """Who has what: a passage of 2-3 facts and a yes/no question about one pair."""
    name = "boolq"
    n_formats = 3

    def sample(self, rng):
        n = int(rng.integers(2, 4))
        names = [NAMES[i] for i in rng.choice(len(NAMES), n, replace=False)]
        objects = [OBJECTS[i] for i in rng.choice(len(OBJECTS), n + 1, replace=False)]
        facts = tuple(zip(names, objects[:n]))
        who = names[int(rng.integers(n))]
        yes = bool(rng.random() < 0.5)
        others = [o for o in objects if o != dict(facts)[who]]  # someone else's, or nobody's
        what = dict(facts)[who] if yes else others[int(rng.integers(n))]
        return facts, who, what

    def key(self, problem):
        facts, who, what = problem
        return ",".join(f"{a} {b}" for a, b in facts) + f"|{who} {what}"

    def render(self, problem, fmt):
        facts, who, what = problem
        yes = dict(facts)[who] == what
        passage = ",".join(f"{a} {b}" for a, b in facts)
        return [(f"{passage}. {who} {what}?", "true" if yes else "false"),
                (f"{passage}. does {who} have {what}?", "yes" if yes else "no"),
                (f"{who} {what}? {passage}.", "yes" if yes else "no")][fmt]

    def answer_is_yes(self, problem):
        facts, who, what = problem
        return (who, what) in facts

# ---------------------------------------------------------------- Winogrande-like


class Winogrande:
    """Two people, one comparative; which of two listed options fits the question."""
    name = "winogrande"
    n_formats = 3

    def sample(self, rng):
        a, b = (NAMES[i] for i in rng.choice(len(NAMES), 2, replace=False))
        pair = COMPARATIVES[int(rng.integers(len(COMPARATIVES)))]
        ask_same = bool(rng.random() < 0.5)  # ask with the same word (answer a) or the opposite (b)
        swap = bool(rng.random() < 0.5)  # option order
        return a, b, pair, ask_same, swap

    def key(self, problem):
        a, b, pair, ask_same, swap = problem
        return f"{a} {pair[0]} {b} {int(ask_same)} {int(swap)}"

    def answer(self, problem):
        a, b, _, ask_same, _ = problem
        return a if ask_same else b

    def render(self, problem, fmt):
        a, b, (word, opposite), ask_same, swap = problem
        question = word if ask_same else opposite
        o1, o2 = (b, a) if swap else (a, b)
        right = self.answer(problem)
        fact = f"{a} {word} than {b}"
        return [(f"{fact}. {question}: {o1} or {o2}?", right),
                (f"{fact}. {question}?", right),
                (f"{question}: {o1} or {o2}? {fact}.", right)][fmt]

# ---------------------------------------------------------------- GSM8K-like


class GSM:
    """A running total under 2-3 steps (+k, -k, *2, *3); the worked answer lists every total.

    Start 1-9, every total in [0, 40): small enough that the 2-layer base model learns
    the arithmetic in pretraining, large enough (~70k problems) for disjoint splits."""
    name = "gsm"
    n_formats = 3
    limit = 40

    def sample(self, rng):
        start = x = int(rng.integers(1, 10))
        steps = []
        for _ in range(int(rng.integers(2, 4))):
            options = [("+", k) for k in range(1, 10) if x + k < self.limit]
            options += [("-", k) for k in range(1, 10) if x - k >= 0]
            options += [("*", k) for k in (2, 3) if x * k < self.limit]
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

    def render(self, problem, fmt):
        start, steps = problem
        totals = [str(t) for t in self.totals(problem)]
        return [("x=" + f"{start}" + "".join(f";x{op}={k}" for op, k in steps) + ";x?", ",".join(totals)),
                (f"{start} " + " ".join(f"{op}{k}" for op, k in steps), "=" + "=".join(totals)),
                (f"start {start} " + " ".join(f"{op}{k}" for op, k in steps) + " end?",
                 " ".join(totals) + f" so {totals[-1]}")][fmt]


def gsm_step(x, op, k):
    return {"+": x + k, "-": x - k, "*": x * k}[op]


TASKS = {t.name: t for t in (ListOps(), BoolQ(), Winogrande(), GSM())}


def get_task(name):
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {sorted(TASKS)}")
    return TASKS[name]
