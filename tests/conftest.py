"""Shared test set-up: hypothesis profiles (the ``--exercises`` option is in ../conftest.py).

Profiles (choose with HYPOTHESIS_PROFILE): ``dev`` (default, quick), ``ci`` (used
when CI is set; derandomized), ``stress`` (CI's size, fresh draws: scripts/stress_claims.sh),
``thorough`` (for a long local run).
"""
import os

from hypothesis import HealthCheck, settings

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several test processes (../conftest.py): one BLAS
    # thread each. The suite's matrices are small, and two processes with two BLAS threads
    # each on two cores spend their time waiting for each other (measured: 189 s against 161 s).
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               derandomize=False, print_blob=True)
settings.register_profile("dev", max_examples=15, **_common)
# CI is derandomized: a landing is not a lottery, and a local CI=true run predicts it exactly.
# Fresh seeds are the stress script's job (scripts/stress_claims.sh uses "stress").
settings.register_profile("ci", max_examples=25, **{**_common, "derandomize": True})
settings.register_profile("stress", max_examples=25, **_common)
settings.register_profile("thorough", max_examples=500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
