"""One float64 patch for Hugging Face models, shared by the live comparison (tests/test_hf.py),
the fixture check (tests/test_hf_fixtures.py) and the fixture writer (scripts/make_hf_fixtures.py).

transformers computes RMSNorm and the rotary angles in float32 even in a float64 model (a
deliberate mixed-precision choice). Patching both to float64 lets ministeer's logits be
compared at 1e-10 instead of at float32's 1e-6. Imports torch and transformers only when called.
"""


def float64_everywhere(model):
    import torch
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding
    for mod in model.modules():
        if isinstance(mod, LlamaRMSNorm):
            mod.forward = lambda h, mod=mod: mod.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True)
                                                                           + mod.variance_epsilon))
        if isinstance(mod, LlamaRotaryEmbedding):
            def rope(x, position_ids, dim=model.config.head_dim, theta=model.config.rope_parameters["rope_theta"]):
                inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
                angles = position_ids[..., None].double() * inv_freq
                angles = torch.cat((angles, angles), dim=-1)
                return angles.cos().to(x.dtype), angles.sin().to(x.dtype)
            mod.forward = rope
    return model
