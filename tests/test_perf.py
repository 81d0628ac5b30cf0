"""The benchmark's own arithmetic and switches (``ministeer/perf``): cheap checks, no timing claims."""
import numpy as np
import pytest

from ministeer.perf import ab, bench, scaling


def test_fitted_exponent_recovers_a_power_law():
    """Rejects a fit of log(size) on log(time) (exponent 1/k) or of unlogged values."""
    sizes = [32, 64, 128, 256, 512]
    assert scaling.slope(sizes, [3.0 * s ** 2 for s in sizes]) == pytest.approx(2.0, abs=1e-9)
    assert scaling.slope(sizes, [0.5 * s ** 1.3 for s in sizes]) == pytest.approx(1.3, abs=1e-9)


def test_exponents_report_local_slopes_that_rise_with_a_quadratic_term():
    """a T + b T^2: the local slope climbs from ~1 to ~2, as attention's T^2 should show."""
    rows = [dict(T=t, ms={"ours": t + t * t / 256}, mib={}) for t in (32, 64, 128, 256, 512)]
    text = scaling.exponents({"T": rows}, ["ours"])
    local = [float(x) for x in text.split("local slopes ")[1].split(", ")]
    assert local == sorted(local) and local[0] < 1.2 and local[-1] > 1.5


def test_variant_sets_and_restores_the_blas_threads():
    """Rejects a variant that leaks its thread count into the next timing, or accepts a typo."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = lambda: [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    with threadpoolctl.threadpool_limits(2, user_api="blas"):  # a known count other than 1, also
        before = blas()                                          # where the suite runs one thread
        with ab.variant("blas1"):
            assert set(blas()) == {1}
        assert blas() == before
    with pytest.raises(ValueError, match="unknown variant 'blsa1'"):
        with ab.variant("blsa1"):
            pass


def test_interleaved_times_every_variant_each_repeat_in_turn():
    order = []
    times = ab.interleaved({"a": (ab.contextlib.nullcontext, lambda: order.append("a")),
                            "b": (ab.contextlib.nullcontext, lambda: order.append("b"))}, repeats=3)
    assert order == ["a", "b"] * 4  # one warm-up round, then three
    assert all(len(wall) == len(cpu) == 3 for wall, cpu in times.values())


def test_bench_runs_and_describes_its_configs(capsys):
    """The smallest table: it names the BLAS, says what c1 is, and prints one row per cell."""
    assert bench.main(["--configs", "c1", "--presets", "llama", "--dtypes", "float32", "--repeats", "1",
                       "--no-torch", "--keep-env"]) == 0
    out = capsys.readouterr().out
    assert "c1: d=64 L=2 H=4 T=32 B=16" in out and "llama = RMSNorm" in out and "BLAS:" in out
    row = [line for line in out.splitlines() if line.startswith("c1 ")]
    assert len(row) == 1 and len(row[0].split()) == 9 and "/floor" in out
    floor_ms, ratio = map(float, row[0].split()[-2:])
    assert floor_ms > 0 and ratio > 0  # timed and printed (their sizes are the benchmark's business)


@pytest.mark.parametrize("preset", ["llama", "gpt2"])
def test_the_gemm_floor_has_three_products_per_weight_matrix(preset):
    """Every linear layer of the model (unembedding included) appears once with its (in, out),
    and the step's products are 3 per linear, 6 per attention layer, and the embeddings' VJPs.
    Rejects a floor that forgets a projection (SwiGLU's gate) or the backward's two products."""
    from ministeer.model import param_shapes
    from ministeer.perf import floor
    cfg = bench.make_config("c1", preset, "float32")
    weights = [(s[1], s[0]) for n, s in param_shapes(cfg).items() if n.endswith("proj.weight")]
    assert sorted(floor.linear_shapes(cfg)) == sorted(weights + [(cfg.d_model, cfg.vocab_size)])
    products = floor.step_products(cfg, 2, 5)
    n_embeddings = 2 if cfg.pos == "learned" else 1
    assert len(products) == 3 * len(weights) + 3 + 6 * cfg.n_layers + n_embeddings
    assert all(p().dtype == np.float32 for p in products)
