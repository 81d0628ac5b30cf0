"""Every tolerance the tests use, each with the reason it is what it is."""

# Exact identities in float64 (merge == unmerge, residual identities computed two ways,
# a primitive against its composition). Each side is a short chain of O(1)-sized
# float64 operations on O(1) values, so rounding differences are a few ulps (~1e-16)
# times the chain length; 1e-12 leaves three orders of margin and still fails on any
# real algebra mistake, which shows up at ~1e-3 or larger.
EXACT = dict(rtol=1e-12, atol=1e-12)

# The same identities in float32: a few ulps at eps32 ~ 1.2e-7.
EXACT32 = dict(rtol=1e-5, atol=1e-6)

# Gradients by central differences (autograd.test_util.check_grads) are accurate to
# O(h^2) with h ~ 1e-6: relative error ~1e-6 at best. check_grads uses its own
# tolerance (rtol=1e-5 for float64), chosen by autograd for exactly this reason.

# First-order claims are not checked by a tolerance at all: the remainder
# ||f(theta + eps d) - f(theta) - eps J d|| must fall like eps^2, i.e. a log-log
# slope of 2 +- SLOPE_TOL over EPSILONS. Second-order terms dominate for eps well
# above the float64 rounding floor (~1e-16 / eps^2 relative) and well below the
# radius where third-order terms matter.
EPSILONS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
SLOPE_TOL = 0.2

# A wider range for whole-model curves (translation), whose third-order terms can still
# bend the curve at 1e-2; scaling.settled_slope drops the leading eps until the local
# slopes settle, so the extra small eps keep >= 3 points in the asymptotic range.
EPSILONS_WIDE = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
