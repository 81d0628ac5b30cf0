"""What a new user meets on a fresh machine: the README's test line, and a suite that needs
nothing the extras it names do not install.

`.ci/run` builds a fresh venv from that line and runs it as written, then the other commands the
docs give (``ministeer verify``, ``pytest -m claim``, grading, ``compare --quick``). These tests
hold the pieces it relies on, so a break shows in a plain ``pytest`` too.
"""
import os
import re
import subprocess
import sys

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Packages a developer may have installed to measure or to write fixtures, and a user does not.
NOT_ON_A_USERS_MACHINE = ("torch", "transformers", "peft", "numexpr", "cupy")

BLOCKER = f'''
import importlib.abc, sys
BLOCKED = {set(NOT_ON_A_USERS_MACHINE)!r}
class Without(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on a user's machine)", name=name)
        return None
sys.meta_path.insert(0, Without())
'''


def readme_test_line():
    """The Quick start's line that installs the test extras and runs the suite."""
    lines = [ln for ln in (ROOT / "README.md").read_text("utf8").splitlines()
             if re.match(r"^pip install .*&& pytest", ln)]
    assert len(lines) == 1, "README.md: the Quick start needs exactly one 'pip install ... && pytest' line"
    return lines[0].split("#")[0].strip()


def test_ci_runs_the_readme_test_line_in_a_fresh_venv():
    """Rejects a CI that installs into a Python that already has everything (the way a missing
    extra stayed green): .ci/run must make its own venv without system site packages and read
    the README's line rather than keep a copy of it that can drift."""
    ci = (ROOT / ".ci" / "run").read_text("utf8")
    assert "python3 -m venv" in ci and "--system-site-packages" not in ci.replace("no --system-site-packages", "")
    assert "README.md" in ci and "&& pytest" in ci


def test_the_readme_test_line_names_extras_that_exist():
    """Rejects a test line naming an extra pyproject does not define (pip only warns about it)."""
    extras = re.search(r'\.\[([^\]]+)\]', readme_test_line()).group(1).split(",")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    defined = tomllib.loads((ROOT / "pyproject.toml").read_text("utf8"))["project"]["optional-dependencies"]
    assert "test" in extras
    assert set(extras) <= set(defined), f"undefined extras: {set(extras) - set(defined)}"


@pytest.mark.skipif(bool(os.environ.get("MINISTEER_NESTED_PYTEST")), reason="already inside a pytest run")
def test_the_suite_collects_without_torch_or_transformers(tmp_path):
    """Rejects a module under the test paths that imports torch or transformers at import time
    (a fixture writer did, and every ``pytest`` on a user's venv stopped at collection)."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
           "MINISTEER_NESTED_PYTEST": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-n", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0 and "error" not in tail.lower(), run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"\d+ tests? collected", tail), tail


@pytest.mark.skipif(bool(os.environ.get("MINISTEER_NESTED_PYTEST")), reason="already inside a pytest run")
def test_the_blocker_really_blocks(tmp_path):
    """The collection test above is only as good as its blocker: importing torch must fail under it."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "not on a user's machine" in run.stderr
