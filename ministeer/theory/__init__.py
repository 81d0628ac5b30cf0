"""The paper's theory as code: one module per idea, each function named after its equation.

=================  ============================================================  ==========================
module             idea                                                          docs page
=================  ============================================================  ==========================
``linear``         a linear layer's update is an exact output shift; input side  02-weight-updates-as-shifts
``first_order``    J_theta s[dtheta] at any site by forward-mode autodiff         02-weight-updates-as-shifts
``scaling``        remainder = O(eps^2) checked by its log-log slope              02-weight-updates-as-shifts
``translate``      a weight update -> per-layer post-block shifts                 02-weight-updates-as-shifts
``glu``            dy_FT and the pre-MLP Jacobian A(h) in closed form             03-glu-and-pre-mlp
``where``          reachability, what an adapter reads, oblique projector, share  04-where-to-steer
``oracle``         oracle composition, lockstep, per-token inversion              04-where-to-steer
``fitting``        the best constant / affine / rank-r / pre-MLP steer            05-parameterizations
``reft``           ReFT at the MLP output is a rank-r update of W_d              05-parameterizations
=================  ============================================================  ==========================

The claim runners for ``ministeer verify`` live in ``claims.py``, beside the derivations
they run, each named after the test file that checks its claim. Equation numbers are this project's (the paper's own numbering is not known
here) and are numbered per docs page, e.g. docs/03-glu-and-pre-mlp.md eq. (3.3) is
``glu.pre_mlp_jacobian``. Every function's docstring names its equation and its test.
"""
