"""Adapters save and load with their spec: a bitwise round trip, in both file formats."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adapter_strategies import adapter_specs, randomize
from strategies import model_and_tokens, seeds

from ministeer import adapters as A
from ministeer.io import CheckpointError, save_arrays
from ministeer.tree import named_leaves


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model_and_tokens(), st.data(), st.sampled_from([".npz", ".safetensors"]))
def test_round_trip_is_bitwise_with_spec(tmp_path, mt, data, suffix):
    cfg, params, tokens = mt
    adapters = {"full": A.full(params)}
    for i in range(data.draw(st.integers(1, 3))):
        kind, fields = data.draw(adapter_specs(cfg))
        adapters[f"{kind}{i}"] = randomize(A.init_adapter(cfg, A.make_spec(cfg, kind, **fields)), data.draw(seeds))
    path = tmp_path / f"adapters{suffix}"
    A.save_adapters(path, adapters)
    loaded = A.load_adapters(path)
    assert list(loaded) == list(adapters)
    for name, a in adapters.items():
        assert loaded[name].spec == a.spec
        leaves, back = named_leaves(a.params), named_leaves(loaded[name].params)
        assert [n for n, _ in leaves] == [n for n, _ in back]
        for (_, x), (_, y) in zip(leaves, back):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert isinstance(loaded["full"].params["model"]["layers"], list)
    assert np.array_equal(A.adapted_forward(params, loaded, tokens, cfg), A.adapted_forward(params, adapters, tokens, cfg))


def test_a_file_without_adapters_is_refused(tmp_path):
    save_arrays(tmp_path / "weights.npz", {"x": np.zeros(3)})
    with pytest.raises(CheckpointError, match="not an adapter file"):
        A.load_adapters(tmp_path / "weights.npz")
