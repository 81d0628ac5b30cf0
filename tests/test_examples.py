"""Smoke-run every script in examples/ with its smallest settings (``--smoke``).

Each example must say in its module docstring what it shows, accept ``--smoke``, and exit 0.
They run as subprocesses, the way a reader runs them, with the repository root on
PYTHONPATH so that the checkout (not some other install) is what they import.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def _run(script, *args, timeout=120):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_there_are_at_least_five_examples():
    assert len(EXAMPLES) >= 5, [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_says_what_it_shows(script):
    doc = ast.get_docstring(ast.parse(script.read_text("utf8")))
    assert doc and len(doc.split()) > 15, f"{script.name} needs a docstring saying what it shows"
    assert "--smoke" in script.read_text("utf8") or "parser(" in script.read_text("utf8")


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_with_smallest_settings(script):
    done = _run(script, "--smoke")
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{script.name} printed nothing"


def test_first_order_example_writes_its_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "scaling.png"
    done = _run(ROOT / "examples" / "first_order_block.py", "--smoke", "--plot", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.stat().st_size > 1000


def test_what_it_writes_tells_a_wrong_verdict_from_a_wrong_fact(monkeypatch):
    """examples/what_it_writes.py sorts BoolQ's errors by which half of ``[fact verdict]`` is
    wrong (rejects a sorter that calls every wrong BoolQ answer a wrong verdict, or that reads a
    missing bracket as a wrong answer)."""
    import importlib.util
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location("what_it_writes", ROOT / "examples" / "what_it_writes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kind = module.kind_of_error
    assert kind("boolq", "[d1 false]", "[d1 false]") is None
    assert kind("boolq", "[d1 true]", "[d1 false]") == "verdict"
    assert kind("boolq", "[d2 false]", "[d1 false]") == "fact"
    assert kind("boolq", "[d2 true]", "[d1 false]") == "fact"
    assert kind("boolq", "[d1 maybe]", "[d1 false]") == "verdict"
    assert kind("boolq", "d1 false", "[d1 false]") == "format"
    assert kind("boolq", "[d1 false]\n", "[d1 false]") == "format"
    assert kind("listops", "[4]", "[3]") == "answer"
    assert kind("listops", "[3", "[3]") == "format"
