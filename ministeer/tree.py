"""Tiny pytree helpers: nested dicts / lists / tuples with arrays at the leaves.

autograd already differentiates such containers; these helpers let the optimizer,
I/O and tests walk them without a framework.
"""


def tree_map(fn, tree, *rest):
    """Apply ``fn`` leafwise to ``tree`` (and to the matching leaves of ``rest``)."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, t, *(r[i] for r in rest)) for i, t in enumerate(tree))
    return fn(tree, *rest)


def named_leaves(tree, prefix=""):
    """``[(dotted name, leaf), ...]`` in a stable order: ``model.layers.0.mlp.up_proj.weight``."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return [(prefix, tree)]
    out = []
    for key, sub in items:
        out += named_leaves(sub, f"{prefix}.{key}" if prefix else str(key))
    return out


def tree_leaves(tree):
    return [leaf for _, leaf in named_leaves(tree)]


def get_path(tree, path):
    """The subtree at a dotted path; a ``KeyError`` lists the valid keys at the failing level."""
    node = tree
    for i, key in enumerate(path.split(".")):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        lookup = int(key) if isinstance(node, (list, tuple)) and key.isdigit() else key
        if lookup not in keys:
            where = ".".join(path.split(".")[:i]) or "<root>"
            raise KeyError(f"no {key!r} under {where!r} in path {path!r}; valid: {keys}")
        node = node[lookup]
    return node


def set_path(tree, path, value):
    """A copy of ``tree`` with the leaf at ``path`` replaced (the input is not modified)."""
    head, _, rest = path.partition(".")
    if isinstance(tree, (list, tuple)):
        i = int(head)
        new = list(tree)
        new[i] = set_path(tree[i], rest, value) if rest else value  # noqa: a fresh list, not traced
        return type(tree)(new)
    get_path(tree, head)  # for the error message
    return {**tree, head: set_path(tree[head], rest, value) if rest else value}


def tree_size(tree):
    """Number of scalars in all leaves."""
    return sum(int(leaf.size) for leaf in tree_leaves(tree))
