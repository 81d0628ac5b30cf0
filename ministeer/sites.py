"""Intervention sites: every activation ``forward`` exposes, by TransformerLens-style name.

A *site* is a named point in the forward pass where a hook may read or replace the
activation. Shapes use ``B`` = batch, ``T`` = positions, ``H`` = heads, ``K`` = key/value
heads, ``dh`` = head size, ``d`` = d_model, ``m`` = d_mlp, ``V`` = vocab.

Residual identities (checked exactly in ``tests/test_model.py``)::

    blocks.{l}.hook_resid_mid  == blocks.{l}.hook_resid_pre + blocks.{l}.hook_attn_out
    blocks.{l}.hook_resid_post == blocks.{l}.hook_resid_mid + blocks.{l}.hook_mlp_out
    blocks.{l}.hook_resid_post == blocks.{l+1}.hook_resid_pre

The paper's three steering sites are aliases: ``pre_mlp`` (the MLP's normalized input),
``post_mlp`` (the MLP output before the skip add) and ``post_block`` (the block output).
"""
import difflib
import fnmatch

# suffix -> (shape, meaning). Order is the order of the forward pass.
BLOCK_SITES = {
    "hook_resid_pre": ("B T d", "residual stream entering the block"),
    "ln1.hook_normalized": ("B T d", "normalized input to attention"),
    "attn.hook_q": ("B T H dh", "queries, before rotary embedding"),
    "attn.hook_k": ("B T K dh", "keys, before rotary embedding"),
    "attn.hook_v": ("B T K dh", "values"),
    "attn.hook_pattern": ("B H T T", "attention probabilities (query pos, key pos)"),
    "attn.hook_z": ("B T H dh", "per-head attention output, before o_proj"),
    "hook_attn_out": ("B T d", "attention output, before the skip add"),
    "hook_resid_mid": ("B T d", "resid_pre + attn_out"),
    "ln2.hook_normalized": ("B T d", "normalized input to the MLP (paper: pre-MLP)"),
    "mlp.hook_pre": ("B T m", "gate pre-activation a_g (GELU MLP: the pre-activation)"),
    "mlp.hook_pre_linear": ("B T m", "up projection a_u (GLU MLPs only)"),
    "mlp.hook_post": ("B T m", "MLP hidden m = act(a_g) * a_u (GELU: act(pre))"),
    "hook_mlp_out": ("B T d", "MLP output y = W_d m, before the skip add (paper: post-MLP)"),
    "hook_resid_post": ("B T d", "block output resid_mid + mlp_out (paper: post-block)"),
}
GLOBAL_SITES = {
    "hook_embed": ("B T d", "token embeddings"),
    "hook_pos_embed": ("B T d", "learned position embeddings (pos='learned' only)"),
    "ln_final.hook_normalized": ("B T d", "final normalized stream, before the unembedding"),
}
ALIASES = {"pre_mlp": "ln2.hook_normalized", "post_mlp": "hook_mlp_out", "post_block": "hook_resid_post"}


def _block_suffixes(cfg):
    return [s for s in BLOCK_SITES if s != "mlp.hook_pre_linear" or cfg.mlp == "swiglu"]


def site_names(cfg):
    """Every valid site name for ``cfg``, in forward order."""
    names = ["hook_embed"] + (["hook_pos_embed"] if cfg.pos == "learned" else [])
    for layer in range(cfg.n_layers):
        names += [f"blocks.{layer}.{s}" for s in _block_suffixes(cfg)]
    return names + ["ln_final.hook_normalized"]


def site_name(kind, layer=None):
    """``site_name("resid_post", 3) -> "blocks.3.hook_resid_post"`` (cf. TL's get_act_name)."""
    suffix = ALIASES.get(kind, kind)
    if suffix not in BLOCK_SITES:
        suffix = next((s for s in BLOCK_SITES if s.split(".")[-1] == f"hook_{kind}"), suffix)
    if layer is None:
        return suffix
    return f"blocks.{layer}.{suffix}"


def _unalias(name):
    head, _, last = name.rpartition(".")
    if name in ALIASES:  # bare alias: every layer
        return f"blocks.*.{ALIASES[name]}"
    if last in ALIASES:
        return f"{head}.{ALIASES[last]}"
    return name


def _closest(name, valid):
    """The valid name or alias nearest a typo: ``postblock``, ``post-block`` -> ``post_block``;
    TransformerLens's short ``resid_post`` -> ``blocks.*.hook_resid_post``."""
    head, _, last = name.replace("-", "_").rpartition(".")
    options = {a: a for a in ALIASES}  # what the user might have meant -> what to suggest
    options.update({s.split(".")[-1].removeprefix("hook_"): s for s in BLOCK_SITES})
    close = difflib.get_close_matches(last, options, n=1, cutoff=0.75)
    if close:
        suffix = options[close[0]]
        guess = (f"{head}.{suffix}" if head.startswith("blocks.") else
                 suffix if suffix in ALIASES or head else f"blocks.*.{suffix}")
        if guess != name and any(fnmatch.fnmatchcase(n, _unalias(guess)) for n in valid):
            return guess
    close = difflib.get_close_matches(name, valid, n=1)
    return close[0] if close else None


def resolve(cfg, name):
    """Concrete site names matched by ``name``: an exact name, an alias or a glob pattern.

    Raises ``KeyError`` naming the closest valid site or alias and listing all of them.
    """
    valid = site_names(cfg)
    pattern = _unalias(name)
    matched = [n for n in valid if fnmatch.fnmatchcase(n, pattern)]
    if not matched:
        close = _closest(name, valid)
        hint = f" Did you mean {close!r}?" if close else ""
        aliases = ", ".join(f"{a} (= blocks.{{l}}.{s})" for a, s in ALIASES.items())
        raise KeyError(f"unknown site {name!r}.{hint} Valid sites for this config: {', '.join(valid)}. "
                       f"Aliases, for every layer or as blocks.{{l}}.<alias>: {aliases}. Globs like "
                       f"'blocks.*.hook_resid_post' work too.")
    return matched


def split_name(name):
    """``"blocks.3.attn.hook_z" -> (3, "attn.hook_z")``; a global site has layer ``None``."""
    if not name.startswith("blocks."):
        return None, name
    _, layer, suffix = name.split(".", 2)
    return int(layer), suffix


def site_shape(cfg, name):
    """Shape of the activation at a concrete site, without the leading ``(B, T)``.

    ``None`` for ``attn.hook_pattern``, which is not indexed by position first.
    """
    suffix = split_name(name)[1]
    shape = (BLOCK_SITES.get(suffix) or GLOBAL_SITES[suffix])[0].split()
    if shape[:2] != ["B", "T"]:
        return None
    size = {"d": cfg.d_model, "m": cfg.d_mlp, "H": cfg.n_heads, "K": cfg.n_kv_heads, "dh": cfg.d_head}
    return tuple(size[s] for s in shape[2:])


def check_layers(cfg, layers):
    """Raise ``ValueError`` unless every entry of ``layers`` is a layer index of ``cfg``."""
    bad = [l for l in layers if not (isinstance(l, int) and not isinstance(l, bool) and 0 <= l < cfg.n_layers)]
    if bad:
        raise ValueError(f"layers {bad} out of range: this config has layers 0..{cfg.n_layers - 1}")


def select_sites(cfg, sites, layers=None, flat_only=False):
    """Concrete site names for patterns ``sites`` (str or list), optionally only ``layers``.

    A bare block suffix (``"hook_attn_out"``) means that site in every layer. ``flat_only``
    keeps to ``[B, T, width]`` activations (what a vector or low-rank adapter can edit).
    """
    patterns = [sites] if isinstance(sites, str) else list(sites)
    patterns = [f"blocks.*.{p}" if p in BLOCK_SITES else p for p in patterns]
    names = list(dict.fromkeys(n for p in patterns for n in resolve(cfg, p)))  # forward order, no duplicates
    if layers is not None:
        check_layers(cfg, layers)
        names = [n for n in names if split_name(n)[0] in layers]
    for n in names:
        shape = site_shape(cfg, n)
        if shape is None or (flat_only and len(shape) != 1):
            want = "a [B, T, width] activation" if flat_only else "a position axis second"
            raise ValueError(f"site {n!r} has shape {BLOCK_SITES[split_name(n)[1]][0]}; this adapter needs {want}")
    if not names:
        raise ValueError(f"sites {sites!r} with layers {layers!r} select no site")
    return names


def resolve_hooks(cfg, hooks):
    """``{name or pattern: fn or [fns]}`` -> ``{concrete site: [fns]}`` in the order given."""
    resolved = {}
    for pattern, fns in (hooks or {}).items():
        fns = list(fns) if isinstance(fns, (list, tuple)) else [fns]
        for name in resolve(cfg, pattern):
            resolved.setdefault(name, []).extend(fns)
    return resolved


def _meanings(cfg):
    """Meanings that depend on the architecture: GPT-2 has LayerNorm, learned positions and
    no gate; Llama has RMSNorm, rotary embeddings and a SwiGLU MLP."""
    if cfg is None:
        return {}
    norm = {"rms": "RMSNorm", "layer": "LayerNorm"}[cfg.norm]
    rotary = ", before rotary embedding" if cfg.pos == "rope" else ""
    out = {"ln1.hook_normalized": f"{norm} of resid_pre, input to attention",
           "ln2.hook_normalized": f"{norm} of resid_mid, input to the MLP (paper: pre-MLP)",
           "attn.hook_q": f"queries{rotary}", "attn.hook_k": f"keys{rotary}",
           "ln_final.hook_normalized": f"final {norm}, before the unembedding"}
    if cfg.mlp == "swiglu":
        out |= {"mlp.hook_pre": "gate pre-activation a_g = W_g x", "mlp.hook_pre_linear": "up projection a_u = W_u x",
                "mlp.hook_post": "MLP hidden m = silu(a_g) * a_u"}
    else:
        bias = " + b_u" if cfg.bias else ""
        out |= {"mlp.hook_pre": f"pre-activation W_u x{bias} (no gate)", "mlp.hook_post": "MLP hidden m = gelu(pre)"}
    return out


def site_table(cfg=None):
    """The sites as Markdown: name, shape, meaning (``ministeer sites`` prints it).

    With ``cfg`` only that architecture's sites, described for it (GPT-2 lists
    ``hook_pos_embed`` and no ``mlp.hook_pre_linear``); without, every site any config has.
    """
    meaning = _meanings(cfg)
    glob = [n for n in GLOBAL_SITES if cfg is None or n in site_names(cfg)]
    block = list(BLOCK_SITES) if cfg is None else _block_suffixes(cfg)
    row = lambda name, shown, table: f"| `{shown}` | {table[name][0]} | {meaning.get(name, table[name][1])} |"
    rows = ["| site | shape | meaning |", "|---|---|---|"]
    rows += [row(n, n, GLOBAL_SITES) for n in glob if n != "ln_final.hook_normalized"]
    rows += [row(n, f"blocks.{{l}}.{n}", BLOCK_SITES) for n in block]
    rows.append(row("ln_final.hook_normalized", "ln_final.hook_normalized", GLOBAL_SITES))
    rows.append("")
    rows.append("Aliases: " + ", ".join(f"`{a}` = `blocks.{{l}}.{s}`" for a, s in ALIASES.items()))
    if cfg is not None:
        rows.append(f"\nThis config has {len(site_names(cfg))} sites.")
    return "\n".join(rows)

