"""Run ``verify`` (every claim of the paper) on a checkpoint loaded from a local folder.

With ``--model DIR`` it loads a Hugging Face folder you have on disk (``config.json`` +
``model.safetensors``, a ``LlamaForCausalLM`` or ``GPT2LMHeadModel``; no network, no
pickle) with ``ministeer.io.hf.load_pretrained``. Without it, it first writes a tiny
Llama-style folder with ``save_pretrained`` into a temporary directory, so the example
runs anywhere. Then it checks the claims on fresh random models and on the checkpoint,
and prints the table ``ministeer verify --model DIR`` prints.

    python examples/verify_checkpoint.py [--model path/to/hf_folder] [--smoke]
"""
import tempfile

import numpy as np

from _common import parser
from ministeer import Config, forward, init_params
from ministeer.io.hf import load_pretrained, save_pretrained
from ministeer.verify import table, verify


def tiny_folder(folder):
    cfg = Config.llama(vocab_size=48, d_model=16, n_heads=4, n_kv_heads=2, d_mlp=32, n_layers=2, n_ctx=32)
    params = init_params(cfg, seed=7, std=0.3)
    save_pretrained(folder, params, cfg)
    loaded, cfg_loaded = load_pretrained(folder)
    tokens = np.array([[1, 2, 3, 4]])
    assert np.array_equal(forward(loaded, tokens, cfg_loaded), forward(params, tokens, cfg))  # a faithful round trip
    print(f"wrote a tiny Llama-style checkpoint to {folder}")
    return folder


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--model", metavar="DIR", help="a local Hugging Face folder (default: make a tiny one)")
    args = p.parse_args(argv)
    claims = [1, 2, 10] if args.smoke else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or tiny_folder(tmp)
        rows = verify(seed=0, model_dir=folder, claims=claims)
    print(table(rows))
    failed = sorted({r["claim"] for r in rows if not r["passed"]})
    print(f"\n{len(rows) - sum(not r['passed'] for r in rows)}/{len(rows)} checks passed"
          + (f"; FAILED claims {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
