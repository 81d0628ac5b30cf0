"""Tiny pytree helpers: nested dicts / lists / tuples with arrays at the leaves.

autograd already differentiates such containers; these helpers let the optimizer,
I/O and tests walk them without a framework.
"""
from autograd.tracer import getval


def tree_map(fn, tree, *rest):
    """Apply ``fn`` leafwise to ``tree`` (and to the matching leaves of ``rest``)."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, t, *(r[i] for r in rest)) for i, t in enumerate(tree))
    return fn(tree, *rest)


def leaf_paths(tree, is_leaf=None, prefix=()):
    """``[(path, leaf), ...]`` in a stable order; a path is a tuple of dict keys and list indices.

    ``is_leaf(node)`` stops the walk early (e.g. at shape tuples). Keys may contain dots
    (adapter params are keyed by site names), so paths, not dotted names, are exact.
    """
    if is_leaf is not None and is_leaf(tree):
        return [(prefix, tree)]
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return [(prefix, tree)]
    return [leaf for key, sub in items for leaf in leaf_paths(sub, is_leaf, prefix + (key,))]


def from_paths(items):
    """Inverse of ``leaf_paths``: a tree of dicts (str keys) and lists (int keys) from ``(path, leaf)``."""
    root = {}
    for path, leaf in items:
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf  # builds a fresh host-side container, never traced
    return _lists_from_int_keys(root)


def _lists_from_int_keys(node):
    if not isinstance(node, dict):
        return node
    node = {k: _lists_from_int_keys(v) for k, v in node.items()}
    if node and all(isinstance(k, int) for k in node):
        return [node[i] for i in range(len(node))]
    return node


def named_leaves(tree, is_leaf=None):
    """``[(dotted name, leaf), ...]`` in a stable order: ``model.layers.0.mlp.up_proj.weight``."""
    return [(".".join(map(str, path)), leaf) for path, leaf in leaf_paths(tree, is_leaf)]


def flatten(tree):
    """``{dotted name: leaf}`` for a parameter tree (Hugging Face names have no dots in keys)."""
    return dict(named_leaves(tree))


def unflatten(flat):
    """Inverse of ``flatten``: digit parts of a name become list indices."""
    return from_paths([tuple(int(k) if k.isdigit() else k for k in name.split(".")), leaf]
                      for name, leaf in flat.items())


def tree_leaves(tree):
    return [leaf for _, leaf in named_leaves(tree)]


def tree_with_leaves(like, leaves):
    """The tree shaped like ``like`` holding ``leaves`` (in ``tree_leaves`` order)."""
    it = iter(leaves)
    return tree_map(lambda _: next(it), like)


def get_path(tree, path):
    """The subtree at a dotted path; a ``KeyError`` lists the valid keys at the failing level."""
    node = tree
    for i, key in enumerate(path.split(".")):
        shape = getval(node)  # a tree differentiated as a whole arrives boxed: read its keys from the value
        keys = list(shape) if isinstance(shape, dict) else list(range(len(shape)))
        lookup = int(key) if isinstance(shape, (list, tuple)) and key.isdigit() else key
        if lookup not in keys:
            where = ".".join(path.split(".")[:i]) or "<root>"
            raise KeyError(f"no {key!r} under {where!r} in path {path!r}; valid: {keys}")
        node = node[lookup]
    return node


def set_path(tree, path, value):
    """A copy of ``tree`` with the leaf at ``path`` replaced (the input is not modified)."""
    head, _, rest = path.partition(".")
    shape = getval(tree)  # a boxed container (a tree differentiated whole) is rebuilt from its items
    if isinstance(shape, (list, tuple)):
        i = int(head)
        new = [tree[j] for j in range(len(shape))]
        new[i] = set_path(tree[i], rest, value) if rest else value  # noqa: a fresh list, not traced
        return type(shape)(new)
    get_path(tree, head)  # for the error message
    return {**{k: tree[k] for k in shape}, head: set_path(tree[head], rest, value) if rest else value}


def tree_size(tree):
    """Number of scalars in all leaves."""
    return sum(int(leaf.size) for leaf in tree_leaves(tree))
