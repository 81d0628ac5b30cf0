"""A differentiable array namespace for any NumPy-like array module (CuPy, or the stand-in).

autograd traces NumPy arrays only, and several of ``autograd.numpy``'s own VJPs build
host arrays (``onp.zeros`` in reductions, ``np.asarray`` in ``dot``...), so boxing a
CuPy array is not enough. Instead,
``make_namespace(raw)`` builds our own small namespace: each op is a *new* autograd
primitive over ``raw.<op>``, and its VJP and JVP are written with the namespace itself,
so every intermediate stays on ``raw``'s device (and second derivatives of these ops work).
``register_array_type`` registers a Box (operators -> this namespace) and a VSpace (zeros and
ones made by ``raw``) for the array type. ``ministeer/ops.py``'s fused primitives are
computed with ``raw`` already, so they need nothing more. On NumPy, ministeer keeps
using ``autograd.numpy`` itself.

Supported ``xp`` operations (``SUPPORTED``; ``tests/test_backend.py`` checks each one's
value, VJP and JVP against ``autograd.numpy``):

* elementwise: add subtract multiply divide negative power maximum minimum where
  exp log sqrt tanh sin cos abs
* reductions: sum mean max min;  linear algebra: matmul
* shapes: reshape transpose swapaxes expand_dims squeeze broadcast_to concatenate stack
  split tril triu astype, and indexing ``x[...]``
* not differentiated (constants): zeros ones zeros_like ones_like full eye arange shape
  ndim sign isfinite, the dtypes and inf pi newaxis
* on a traced array: ``+ - * / ** @``, unary ``-``, comparisons (not differentiated),
  ``.T .shape .ndim .dtype .size len() .reshape .astype .sum .mean .max .min .transpose .swapaxes``

Anything else raises an AttributeError naming this list: add the op here, with its
VJP and JVP, or build the constant with ``raw``.
"""
import math
from types import SimpleNamespace

from autograd.extend import Box, VSpace, defjvp, defvjp, primitive
from autograd.tracer import getval

ELEMENTWISE = ("add", "subtract", "multiply", "divide", "negative", "power", "maximum", "minimum",
               "where", "exp", "log", "sqrt", "tanh", "sin", "cos", "abs")
STRUCTURAL = ("sum", "mean", "max", "min", "matmul", "reshape", "transpose", "swapaxes", "expand_dims",
              "squeeze", "broadcast_to", "concatenate", "stack", "split", "tril", "triu", "astype",
              "getitem")
CONSTANTS = ("zeros", "ones", "zeros_like", "ones_like", "full", "eye", "arange", "shape", "ndim",
             "sign", "isfinite", "float16", "float32", "float64", "int32", "int64", "bool_", "inf",
             "pi", "newaxis")
SUPPORTED = ELEMENTWISE + STRUCTURAL + CONSTANTS


class Namespace(SimpleNamespace):
    def __getattr__(self, name):
        raise AttributeError(f"xp.{name} is not in ministeer's differentiable namespace; supported: "
                             f"{', '.join(SUPPORTED)}. Add it to ministeer/backend/namespace.py with its VJP and "
                             "JVP, or build constants with raw")


def _axes(axis, ndim):
    axes = range(ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    return tuple(sorted(a % ndim for a in axes))


def make_namespace(raw):
    """The differentiable namespace over array module ``raw`` (see the module docstring)."""
    ns = Namespace()

    def define(name, fn, vjps, jvps):
        fn.__name__ = fn.__qualname__ = name
        prim = primitive(fn)
        defvjp(prim, *vjps)
        defjvp(prim, *jvps)
        setattr(ns, name, prim)
        return prim

    def unbroadcast(g, shape):
        """Sum a broadcast gradient back down to ``shape``."""
        extra = g.ndim - len(shape)
        if extra:
            g = ns.sum(g, axis=tuple(range(extra)))
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
        return ns.sum(g, axis=axes, keepdims=True) if axes else g

    def broadcast_like(g, ans):
        return g if g.shape == ans.shape else ns.broadcast_to(g, ans.shape)

    # ---- elementwise: d(ans, *args) is the partial derivative w.r.t. one argument
    def elementwise(name, fn, *partials):
        vjps = [(lambda d, i: lambda ans, *args: lambda g: unbroadcast(
            g if d is None else g * d(ans, *args), raw.shape(args[i])))(d, i) for i, d in enumerate(partials)]
        jvps = [(lambda d: lambda g, ans, *args: broadcast_like(
            g if d is None else g * d(ans, *args), ans))(d) for d in partials]
        return define(name, fn, vjps, jvps)

    def share(a, b, ans, dtype):  # ties of max/min split the gradient evenly, as autograd does
        on_a, on_b = (getval(a) == ans).astype(dtype), (getval(b) == ans).astype(dtype)
        return on_a / (on_a + on_b)

    elementwise("add", lambda x, y: raw.add(x, y), None, None)
    elementwise("subtract", lambda x, y: raw.subtract(x, y), None, lambda ans, x, y: -1.0)
    elementwise("multiply", lambda x, y: raw.multiply(x, y), lambda ans, x, y: y, lambda ans, x, y: x)
    elementwise("divide", lambda x, y: raw.divide(x, y), lambda ans, x, y: 1.0 / y,
                lambda ans, x, y: -ans / y)
    elementwise("power", lambda x, y: raw.power(x, y), lambda ans, x, y: y * x ** (y - 1.0),
                lambda ans, x, y: ans * ns.log(raw.where(getval(x) > 0, getval(x), 1.0)))
    elementwise("maximum", lambda x, y: raw.maximum(x, y), lambda ans, x, y: share(x, y, ans, ans.dtype),
                lambda ans, x, y: share(y, x, ans, ans.dtype))
    elementwise("minimum", lambda x, y: raw.minimum(x, y), lambda ans, x, y: share(x, y, ans, ans.dtype),
                lambda ans, x, y: share(y, x, ans, ans.dtype))
    elementwise("negative", lambda x: raw.negative(x), lambda ans, x: -1.0)
    elementwise("exp", lambda x: raw.exp(x), lambda ans, x: ans)
    elementwise("log", lambda x: raw.log(x), lambda ans, x: 1.0 / x)
    elementwise("sqrt", lambda x: raw.sqrt(x), lambda ans, x: 0.5 / ans)
    elementwise("tanh", lambda x: raw.tanh(x), lambda ans, x: 1.0 - ans * ans)
    elementwise("sin", lambda x: raw.sin(x), lambda ans, x: ns.cos(x))
    elementwise("cos", lambda x: raw.cos(x), lambda ans, x: -ns.sin(x))
    elementwise("abs", lambda x: raw.abs(x), lambda ans, x: raw.sign(getval(x)))
    define("where", lambda c, x, y: raw.where(c, x, y), [
        None,
        lambda ans, c, x, y: lambda g: unbroadcast(ns.where(c, g, 0.0), raw.shape(x)),
        lambda ans, c, x, y: lambda g: unbroadcast(ns.where(c, 0.0, g), raw.shape(y))], [
        None,
        lambda g, ans, c, x, y: broadcast_like(ns.where(c, g, 0.0), ans),
        lambda g, ans, c, x, y: broadcast_like(ns.where(c, 0.0, g), ans)])

    # ---- reductions
    def kept_shape(x, axis):  # x's shape with the reduced axes set to 1
        axes = _axes(axis, x.ndim)
        return tuple(1 if i in axes else n for i, n in enumerate(x.shape))

    def spread(g, x, axis):  # the gradient of a reduction, broadcast back over x
        return ns.broadcast_to(ns.reshape(g, kept_shape(x, axis)), x.shape)

    define("sum", lambda x, axis=None, keepdims=False: raw.sum(x, axis=axis, keepdims=keepdims),
           [lambda ans, x, axis=None, keepdims=False: lambda g: spread(g, x, axis)],
           [lambda g, ans, x, axis=None, keepdims=False: ns.sum(g, axis=axis, keepdims=keepdims)])

    def chooser():
        def weights(ans, x, axis):  # 1/(number of maxima) where x attains it, else 0
            hit = (x == raw.reshape(ans, kept_shape(x, axis))).astype(x.dtype)
            return hit / raw.sum(hit, axis=axis, keepdims=True)
        return ([lambda ans, x, axis=None, keepdims=False: lambda g: spread(g, x, axis) * weights(ans, x, axis)],
                [lambda g, ans, x, axis=None, keepdims=False:
                 ns.sum(g * weights(ans, x, axis), axis=axis, keepdims=keepdims)])

    define("max", lambda x, axis=None, keepdims=False: raw.max(x, axis=axis, keepdims=keepdims),
           *chooser())
    define("min", lambda x, axis=None, keepdims=False: raw.min(x, axis=axis, keepdims=keepdims),
           *chooser())

    def mean(x, axis=None, keepdims=False):  # sum x (1/n) with a Python float: no dtype upcast
        n = math.prod(x.shape[a] for a in _axes(axis, x.ndim))
        return ns.sum(x, axis=axis, keepdims=keepdims) * (1.0 / n)
    ns.mean = mean

    # ---- matmul (NumPy's rules for 1-D operands: a vector is a row on the left, a column on the right)
    swap = lambda a: ns.swapaxes(a, -1, -2)

    def matmul_vjp_x(ans, x, y):
        def vjp(g):
            if x.ndim == 1 and y.ndim == 1:
                return g * y
            if y.ndim == 1:  # g [..., n]
                return unbroadcast(g[..., None] * y, x.shape)
            if x.ndim == 1:  # g [..., m]
                return unbroadcast((y @ g[..., None])[..., 0], x.shape)
            return unbroadcast(g @ swap(y), x.shape)
        return vjp

    def matmul_vjp_y(ans, x, y):
        def vjp(g):
            if x.ndim == 1 and y.ndim == 1:
                return g * x
            if y.ndim == 1:
                return unbroadcast((swap(x) @ g[..., None])[..., 0], y.shape)
            if x.ndim == 1:
                return unbroadcast(x[:, None] * g[..., None, :], y.shape)
            if y.ndim == 2:  # batched x against one matrix: a single GEMM over all rows
                return ns.reshape(x, (-1, x.shape[-1])).T @ ns.reshape(g, (-1, g.shape[-1]))
            return unbroadcast(swap(x) @ g, y.shape)
        return vjp

    define("matmul", lambda x, y: raw.matmul(x, y), [matmul_vjp_x, matmul_vjp_y],
           [lambda g, ans, x, y: ns.matmul(g, y), lambda g, ans, x, y: ns.matmul(x, g)])

    # ---- shapes: all linear, so each JVP is the op itself applied to the tangent
    def linear(name, fn, vjp):
        define(name, fn, [vjp], [lambda g, ans, x, *args, **kw: ns_op(g, *args, **kw)])
        ns_op = getattr(ns, name)

    linear("reshape", lambda x, shape: raw.reshape(x, shape),
           lambda ans, x, shape: lambda g: ns.reshape(g, x.shape))
    linear("transpose", lambda x, axes=None: raw.transpose(x, axes),
           lambda ans, x, axes=None: lambda g: ns.transpose(
               g, None if axes is None else tuple(sorted(range(x.ndim), key=lambda i: axes[i] % x.ndim))))
    linear("swapaxes", lambda x, a, b: raw.swapaxes(x, a, b),
           lambda ans, x, a, b: lambda g: ns.swapaxes(g, a, b))
    linear("expand_dims", lambda x, axis: raw.expand_dims(x, axis),
           lambda ans, x, axis: lambda g: ns.reshape(g, x.shape))
    linear("squeeze", lambda x, axis=None: raw.squeeze(x, axis=axis),
           lambda ans, x, axis=None: lambda g: ns.reshape(g, x.shape))
    linear("broadcast_to", lambda x, shape: raw.broadcast_to(x, shape),
           lambda ans, x, shape: lambda g: unbroadcast(g, x.shape))
    linear("tril", lambda x, k=0: raw.tril(x, k), lambda ans, x, k=0: lambda g: ns.tril(g, k))
    linear("triu", lambda x, k=0: raw.triu(x, k), lambda ans, x, k=0: lambda g: ns.triu(g, k))
    define("astype", lambda x, dtype: x.astype(dtype), [lambda ans, x, dtype: lambda g: ns.astype(g, x.dtype)],
           [lambda g, ans, x, dtype: ns.astype(g, dtype)])

    def getitem_vjp(ans, x, index):
        parts = index if isinstance(index, tuple) else (index,)
        scatter = any(getattr(p, "ndim", 0) and p.dtype.kind in "iu" for p in parts)  # repeats possible
        def vjp(g):
            out = raw.zeros(x.shape, dtype=g.dtype)
            if scatter:
                raw.add.at(out, index, getval(g))
            else:
                out[index] = getval(g)
            return out
        return vjp
    linear("getitem", lambda x, index: x[index], getitem_vjp)

    # ---- lists of arrays: autograd sees only top-level arguments, so unpack them
    def offsets(sizes):
        return [sum(sizes[:i]) for i in range(len(sizes) + 1)]

    def concat_vjp(i):
        def make(ans, axis, *xs):
            lo, hi = offsets([a.shape[axis] for a in xs])[i:i + 2]
            return lambda g: g[(slice(None),) * (axis % ans.ndim) + (slice(lo, hi),)]
        return make

    def stack_vjp(i):
        return lambda ans, axis, *xs: lambda g: g[(slice(None),) * (axis % ans.ndim) + (i,)]

    def with_zeros(op, i):  # JVP of a linear op in its i-th array: the others contribute zero
        return lambda g, ans, axis, *xs: op(axis, *[g if j == i else raw.zeros_like(getval(a))
                                                    for j, a in enumerate(xs)])

    n_max = 64  # VJPs are registered per argument position; 64 arrays in one call is plenty
    concat_args = define("concatenate_args", lambda axis, *xs: raw.concatenate(xs, axis=axis),
                         [None] + [concat_vjp(i) for i in range(n_max)],
                         [None] + [with_zeros(lambda *a: concat_args(*a), i) for i in range(n_max)])
    stack_args = define("stack_args", lambda axis, *xs: raw.stack(xs, axis=axis),
                        [None] + [stack_vjp(i) for i in range(n_max)],
                        [None] + [with_zeros(lambda *a: stack_args(*a), i) for i in range(n_max)])
    ns.concatenate = lambda arrays, axis=0: concat_args(axis, *arrays)
    ns.stack = lambda arrays, axis=0: stack_args(axis, *arrays)

    def split(x, indices_or_sections, axis=0):
        n = x.shape[axis]
        if isinstance(indices_or_sections, int):
            if n % indices_or_sections:
                raise ValueError(f"array split does not result in an equal division ({n} into "
                                 f"{indices_or_sections})")
            indices_or_sections = range(n // indices_or_sections, n, n // indices_or_sections)
        bounds = [0, *indices_or_sections, n]
        lead = (slice(None),) * (axis % x.ndim)
        return [ns.getitem(x, lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    ns.split = split

    # ---- constants: never traced (their inputs are shapes, or the values of traced arrays)
    for name in ("zeros", "ones", "full", "eye", "arange", "float16", "float32", "float64", "int32",
                 "int64", "bool_", "inf", "pi", "newaxis"):
        setattr(ns, name, getattr(raw, name))
    for name in ("zeros_like", "ones_like", "shape", "ndim", "sign", "isfinite"):
        setattr(ns, name, (lambda f: lambda x, *a, **k: f(getval(x), *a, **k))(getattr(raw, name)))
    return ns


def register_array_type(ns, raw, array_type):
    """Teach autograd to trace ``array_type``: a Box whose operators use ``ns``, and a VSpace."""

    class XpBox(Box):
        __slots__ = []
        __array_ufunc__ = None  # NumPy/CuPy binary operators defer to our reflected ones
        __array_priority__ = 1000.0
        shape = property(lambda self: self._value.shape)
        ndim = property(lambda self: self._value.ndim)
        size = property(lambda self: self._value.size)
        dtype = property(lambda self: self._value.dtype)
        T = property(lambda self: ns.transpose(self))
        __hash__ = object.__hash__
        __len__ = lambda self: len(self._value)
        __getitem__ = lambda self, index: ns.getitem(self, index)
        __neg__ = lambda self: ns.negative(self)
        __add__, __radd__ = lambda s, o: ns.add(s, o), lambda s, o: ns.add(o, s)
        __sub__, __rsub__ = lambda s, o: ns.subtract(s, o), lambda s, o: ns.subtract(o, s)
        __mul__, __rmul__ = lambda s, o: ns.multiply(s, o), lambda s, o: ns.multiply(o, s)
        __truediv__, __rtruediv__ = lambda s, o: ns.divide(s, o), lambda s, o: ns.divide(o, s)
        __pow__, __rpow__ = lambda s, o: ns.power(s, o), lambda s, o: ns.power(o, s)
        __matmul__, __rmatmul__ = lambda s, o: ns.matmul(s, o), lambda s, o: ns.matmul(o, s)
        __eq__ = lambda s, o: getval(s) == getval(o)  # comparisons give constant masks
        __ne__ = lambda s, o: getval(s) != getval(o)
        __lt__ = lambda s, o: getval(s) < getval(o)
        __le__ = lambda s, o: getval(s) <= getval(o)
        __gt__ = lambda s, o: getval(s) > getval(o)
        __ge__ = lambda s, o: getval(s) >= getval(o)

        def reshape(self, *shape):
            return ns.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

        def transpose(self, *axes):
            return ns.transpose(self, (axes[0] if len(axes) == 1 and not isinstance(axes[0], int)
                                       else axes) or None)

        astype = lambda self, dtype: ns.astype(self, dtype)
        swapaxes = lambda self, a, b: ns.swapaxes(self, a, b)
        sum = lambda self, axis=None, keepdims=False: ns.sum(self, axis, keepdims)
        mean = lambda self, axis=None, keepdims=False: ns.mean(self, axis, keepdims)
        max = lambda self, axis=None, keepdims=False: ns.max(self, axis, keepdims)
        min = lambda self, axis=None, keepdims=False: ns.min(self, axis, keepdims)

    class XpVSpace(VSpace):
        def __init__(self, value):
            self.shape, self.dtype = value.shape, value.dtype

        size = property(lambda self: math.prod(self.shape))
        ndim = property(lambda self: len(self.shape))
        zeros = lambda self: raw.zeros(self.shape, dtype=self.dtype)
        ones = lambda self: raw.ones(self.shape, dtype=self.dtype)
        randn = lambda self: raw.random.standard_normal(self.shape).astype(self.dtype)
        _inner_prod = lambda self, x, y: raw.sum(x * y)

        def standard_basis(self):
            for i in range(self.size):
                e = raw.zeros(self.size, dtype=self.dtype)
                e[i] = 1
                yield e.reshape(self.shape)

    XpBox.register(array_type)
    XpVSpace.register(array_type)
    return XpBox, XpVSpace

