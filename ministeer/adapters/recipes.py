"""Each method's training setup: the comparison's shared recipe, or the one its authors run.

The headline table trains every method under one *shared* recipe (``SHARED``: linear decay
after 3% warmup, the paper code's default), so that a difference between two rows is the
method's and not its schedule's. Each method's authors run it otherwise; ``OFFICIAL`` holds
their setups as data, with the file each comes from:

=================  ==========  =========  ========  =================================================
family             schedule    warmup     lr        source
=================  ==========  =========  ========  =================================================
steering (paper)   linear      3%         9e-4      SprocketLab/steerling ``train.py``
joint (paper)      cosine      6%         2e-4      SprocketLab/steerling ``joint/train_orthogonal.py``
LoRA, full FT      linear      3%         --        no script of the paper's trains them alone: ``SHARED``
ReFT (pyreft)      linear      0          5e-3      stanfordnlp/pyreft ``examples/loreft/train.py``
LoFiT              linear      0          1e-2      fc2869/lo-fit ``lofit_trainer.py`` + ``train_script_*.sh``
JoLA               cosine      50 steps   5e-3      wenlai-lavine/jola ``jola/config.yaml``
=================  ==========  =========  ========  =================================================

The official ``lr`` is for 1B-8B models and is kept for reference: at this scale each
method keeps its own swept rate under either recipe (``compare --recipe official`` changes
the schedule and the warmup only). ``fit_settings(name, recipe, steps)`` returns the
``train_method`` keyword arguments of a method under a recipe. Tests: tests/test_adapters_fair.py.
"""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Setup:
    schedule: str         # train.learning_rate's schedule: "linear", "cosine" or "constant"
    warmup_ratio: float   # warmup as a share of the steps (Hugging Face's warmup_ratio) ...
    warmup_steps: int     # ... or as a count (warmup_steps wins when set, as in Hugging Face)
    lr: float             # the authors' default rate on their (1B-8B) models
    source: str           # where the setup is written

    def warmup(self, steps):
        """Warmup steps of a run of ``steps`` (Hugging Face rounds the ratio up)."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, steps)
        return math.ceil(self.warmup_ratio * steps)


STEERLING = "https://github.com/SprocketLab/steerling"
SHARED = Setup("linear", 0.03, None, None, "the comparison's one recipe (the paper code's schedule and warmup)")
STEERING = Setup("linear", 0.03, None, 9e-4, f"{STEERLING}/blob/main/train.py (--lr 9e-4, --warmup-ratio 0.03)")
OFFICIAL = {
    "steering": STEERING,
    "joint": Setup("cosine", 0.06, None, 2e-4, f"{STEERLING}/blob/main/joint/train_orthogonal.py "
                   "(--scheduler cosine, --warmup-ratio 0.06, --lr 2e-4)"),
    "weights": Setup("linear", 0.03, None, None, "no script in SprocketLab/steerling trains LoRA or full "
                     "fine-tuning alone: the shared recipe"),
    "reft": Setup("linear", 0.0, None, 5e-3, "https://github.com/stanfordnlp/pyreft/blob/main/examples/loreft/"
                  "train.py (--schedule linear, --warmup_ratio 0.00, --lr 5e-3)"),
    "lofit": Setup("linear", 0.0, None, 1e-2, "https://github.com/fc2869/lo-fit/blob/main/train_script_clutrr.sh "
                   "(--lr 1e-2 for the offsets; lofit_trainer.py keeps the Trainer's linear decay, no warmup)"),
    "jola": Setup("cosine", None, 50, 5e-3, "https://github.com/wenlai-lavine/jola/blob/main/jola/config.yaml "
                  "(lr_scheduler_type cosine, warmup_steps 50, learning_rate 0.005)"),
}
RECIPES = ("shared", "official")


def family(name):
    """Which authors' setup method ``name`` follows under the official recipe."""
    from .methods import METHODS
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; valid: {sorted(METHODS)}")
    method = METHODS[name]
    if method.orth is not None:
        return "joint"
    kinds = {spec["kind"] for spec in method.adapters.values()}
    if kinds & {"loreft", "direft", "nodireft"}:
        return "reft"
    if kinds & {"lofit", "jola"}:
        return next(iter(kinds & {"lofit", "jola"}))
    if kinds & {"lora", "full"}:
        return "weights"
    return "steering"


def official_setup(name):
    """The ``Setup`` method ``name``'s authors train it with."""
    return OFFICIAL[family(name)]


def fit_settings(name, recipe="shared", steps=300):
    """``train_method`` keyword arguments (schedule, warmup) of method ``name`` under ``recipe``:
    "shared" (every method alike: ``SHARED``) or "official" (its authors' ``official_setup``)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r}; expected one of {RECIPES}")
    setup = official_setup(name) if recipe == "official" else (family(name) and SHARED)  # family: checks the name
    return dict(schedule=setup.schedule, warmup=setup.warmup(steps))
