"""ministeer: weight updates as activation shifts, in NumPy + autograd.

A reference implementation of Adila, Cooper, Yun, Trost, Sala, "Weight Updates as
Activation Shifts: A Principled Framework for Steering" (ICML 2026, arXiv 2603.00425).
"""
from .backend import from_numpy, get_backend, set_backend, to_numpy, use_backend
from .model import Config, forward, init_params, loss_fn, run_with_cache
from .generate import generate
from .io import load_model, load_pretrained, save_model, save_pretrained
from .sites import site_name, site_names
from .train import fit

__version__ = "0.1.0"
__all__ = ["Config", "fit", "forward", "from_numpy", "generate", "get_backend", "init_params",
           "load_model", "load_pretrained", "loss_fn", "run_with_cache", "save_model", "save_pretrained",
           "set_backend", "site_name", "site_names", "to_numpy", "use_backend"]
