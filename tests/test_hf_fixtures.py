"""Logits against the ones ``transformers`` wrote: parity without transformers installed.

tests/fixtures/hf_tiny_{llama,gpt2}/ were written once by scripts/make_hf_fixtures.py:
random-weight models (Llama with grouped-query attention and rope_theta = 500; GPT-2 with
biases, learned positions and a tied unembedding), saved by ``save_pretrained``, with the
float64 logits transformers computed for ``tokens.npy``. Loading the folder and running
ministeer's forward must reproduce them to 1e-10. Rejects, among others, a flipped RoPE
rotation, a wrong norm eps or attention scale, a wrong GQA grouping, a transposed
checkpoint tensor or a GPT-2 Conv1D read the wrong way round.
"""
from pathlib import Path

import numpy as np
import pytest

from ministeer.io.hf import load_pretrained
from ministeer.model import forward

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARCHS = ["llama", "gpt2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_the_committed_transformers_logits(arch):
    pytest.importorskip("safetensors")
    folder = FIXTURES / f"hf_tiny_{arch}"
    params, cfg = load_pretrained(folder)
    assert (cfg.norm, cfg.pos) == (("rms", "rope") if arch == "llama" else ("layer", "learned"))
    assert arch != "llama" or (cfg.n_kv_heads, cfg.rope_theta) == (2, 500.0)
    tokens, expected = np.load(folder / "tokens.npy"), np.load(folder / "logits.npy")
    np.testing.assert_allclose(forward(params, tokens, cfg), expected, rtol=0, atol=1e-10)


@pytest.mark.slow  # importing transformers and torch takes ~10 s
@pytest.mark.parametrize("arch", ARCHS)
def test_fixture_logits_are_what_the_installed_transformers_computes(arch):
    """Where transformers is installed: it still computes the committed logits from the folder."""
    pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from hf_float64 import float64_everywhere
    import transformers
    folder = FIXTURES / f"hf_tiny_{arch}"
    auto = getattr(transformers, "LlamaForCausalLM" if arch == "llama" else "GPT2LMHeadModel")
    model = float64_everywhere(auto.from_pretrained(folder, dtype=torch.float64).eval())
    with torch.no_grad():
        live = model(torch.tensor(np.load(folder / "tokens.npy"))).logits.numpy()
    np.testing.assert_allclose(live, np.load(folder / "logits.npy"), rtol=0, atol=1e-12)
