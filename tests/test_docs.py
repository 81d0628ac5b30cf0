"""The docs cannot drift from the code.

The code blocks themselves run under pytest-markdown-docs (``--markdown-docs`` in
pyproject's addopts collects docs/*.md and README.md). This module checks the rest:

* every relative link resolves to a file in the repository;
* a link whose text names a function (`` [`glu.pre_mlp_jacobian`](../ministeer/theory/glu.py) ``)
  points to a file that defines that function (so renaming it breaks the docs build);
* every numbered equation ``\\tag{n.m}`` has a row in a table that links its code and test;
* every page with exercises ends with an Exercises section naming each of them;
* the docs site builds with ``mkdocs build --strict`` (when the ``docs`` extra is installed),
  lists every page, and links each exercise to its stub and checker;
* what page 1 says about sites holds (config-aware table, "did you mean" for alias typos);
* a docs code block's print() stays out of the pytest log.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ministeer.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _links(page):
    text = page.read_text("utf8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code fences are code
    return LINK.findall(text)


def _defines(path, name):
    source = path.read_text("utf8")
    return re.search(rf"^\s*(def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=", source, re.M) is not None


def test_docs_exist():
    names = {p.name for p in PAGES}
    for required in ("index.md", "01-model-and-sites.md", "exercises.md"):
        assert required in names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for text, target in _links(page):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # external or in-page
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name}: link [{text}]({target}) points to a missing file"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_function_links_name_real_functions(page):
    for text, target in _links(page):
        name = re.fullmatch(r"`([A-Za-z_][\w.]*)`", text)
        if not name or not target.split("#")[0].endswith(".py"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if name.group(1).endswith(".py"):
            continue  # a file name, not a function
        leaf = name.group(1).split(".")[-1]
        assert _defines(path, leaf), f"{page.name}: [{text}]({target}): no `{leaf}` defined in {path.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_numbered_equation_is_linked(page):
    text = page.read_text("utf8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    for tag in re.findall(r"\\tag\{([\d.]+)\}", text):
        assert any(f"({tag})" in row.split("|")[1] for row in rows if row.count("|") > 2), \
            f"{page.name}: eq. ({tag}) has no row in a 'computed by | checked by' table"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_exercises_section_names_its_exercises(page):
    numbered = re.match(r"(\d\d)-", page.name)
    if not numbered:
        return
    text = page.read_text("utf8")
    assert "\n## Exercises\n" in text, f"{page.name} must end with an '## Exercises' section"
    section = text.split("\n## Exercises\n", 1)[1]
    for number, (_, _, doc) in EXERCISES.items():
        if Path(doc).name == page.name:
            assert f"Exercise {number}" in section, f"{page.name}: Exercises section does not mention {number}"


# ---------------------------------------------------------------- page 1's sites, as the page says


def test_site_table_is_config_aware():
    """Page 1, exercise 4 is answerable: GPT-2's table has the learned position embedding and
    no gate, Llama's the reverse (rejects one table printed for every config)."""
    from ministeer import Config
    from ministeer.sites import site_table
    gpt2, llama = site_table(Config.gpt2()), site_table(Config.llama())
    assert "`hook_pos_embed`" in gpt2 and "`hook_pos_embed`" not in llama
    assert "mlp.hook_pre_linear" in llama and "mlp.hook_pre_linear" not in gpt2
    assert "rotary" in llama and "rotary" not in gpt2
    assert "LayerNorm" in gpt2 and "RMSNorm" in llama and "RMSNorm" not in gpt2


@pytest.mark.parametrize("typo, meant", [("postblock", "post_block"), ("post-block", "post_block"),
                                          ("resid_post", "blocks.*.hook_resid_post"), ("pre_mpl", "pre_mlp"),
                                          ("blocks.1.postblock", "blocks.1.post_block")])
def test_alias_typo_gets_did_you_mean(typo, meant):
    """A typo of an alias names the alias, and the error lists the aliases among the valid names."""
    from ministeer import Config
    from ministeer.sites import resolve
    with pytest.raises(KeyError) as err:
        resolve(Config.llama(n_layers=2), typo)
    assert f"Did you mean {meant!r}?" in str(err.value)
    assert all(alias in str(err.value) for alias in ("pre_mlp", "post_mlp", "post_block"))


# ---------------------------------------------------------------- the docs site

MKDOCS = ROOT / "mkdocs.yml"


def test_nav_lists_every_page():
    """Every page in docs/ is in the site's navigation (rejects a page only reachable by search)."""
    nav = MKDOCS.read_text("utf8").split("\nnav:", 1)[1].split("\n\n", 1)[0]
    for page in PAGES:
        assert f": {page.name}" in nav, f"mkdocs.yml: add {page.name} to nav"


def test_exercises_page_links_each_stub_and_checker():
    """Each exercise's row links the stub that defines its function and the module that defines its checker."""
    rows = {line.split("|")[1].strip(): line for line in (ROOT / "docs" / "exercises.md").read_text("utf8").splitlines()
            if re.match(r"\| \d\.\d ", line)}
    assert set(rows) == set(EXERCISES)
    for number, (name, checker, _) in EXERCISES.items():
        targets = dict((text, target) for text, target in LINK.findall(rows[number]))
        stub, check = targets["stub"], targets[f"`{checker.__name__}`"]
        assert _defines((ROOT / "docs" / stub).resolve(), name), f"{number}: {stub} has no {name}"
        assert _defines((ROOT / "docs" / check).resolve(), checker.__name__)


ESCAPED_PIPE_IN_CODE = re.compile(r"`[^`\n]*\\\|[^`\n]*`")


@pytest.mark.parametrize("page", PAGES + [ROOT / "README.md"], ids=lambda p: p.name)
def test_no_backslash_pipe_in_code_spans(page):
    """A code span in a table cannot hold ``\\|``: GitHub drops the backslash, but the docs site
    (Python-Markdown) shows it, so the reader sees ``\\|box``. Write ``<code>a&#124;box</code>``
    instead, which both render as ``a|box`` (rejects the six such spans the tables once had)."""
    text = re.sub(r"```.*?```", "", page.read_text("utf8"), flags=re.S)
    assert ESCAPED_PIPE_IN_CODE.findall(text) == []


def test_readme_names_the_site_build_command():
    assert 'pip install -e ".[docs]"' in (ROOT / "README.md").read_text("utf8")
    assert "mkdocs build" in (ROOT / "README.md").read_text("utf8")


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("MINISTEER_NESTED_PYTEST")), reason="already inside a pytest run")
def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict`: no broken link or cross-reference, every page built, the math
    marked for KaTeX (served from the site itself), and an equation's "computed by" link lands
    on the function's documented signature in the API reference."""
    pytest.importorskip("mkdocs", reason='the docs extra is not installed: pip install -e ".[docs]"')
    pytest.importorskip("mkdocstrings", reason='the docs extra is not installed: pip install -e ".[docs]"')
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert run.returncode == 0, run.stderr[-4000:]
    for page in PAGES:
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.exists(), f"{page.name} was not built"
        stray = re.findall(r"<code>[^<]*\\\|", built.read_text("utf8"))
        assert stray == [], f"{page.name}: a code span shows a backslash before a pipe: {stray}"
    assert "2)&#124;box</code>" in (site / "results" / "index.html").read_text("utf8")
    assert (site / "search" / "search_index.json").exists()
    assert (site / "assets" / "katex" / "katex.min.js").exists()
    glu = (site / "03-glu-and-pre-mlp" / "index.html").read_text("utf8")
    assert 'class="arithmatex"' in glu and r"\tag{3.3}" in glu
    href = "../api/ministeer.theory.glu/#ministeer.theory.glu.pre_mlp_jacobian"
    assert f'href="{href}"' in glu, "the (3.3) row must link the function's API entry"
    api = (site / "api" / "ministeer.theory.glu" / "index.html").read_text("utf8")
    assert 'id="ministeer.theory.glu.pre_mlp_jacobian"' in api  # the documented signature ...
    assert '<span class="nf">pre_mlp_jacobian</span>' in api  # ... and its source


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("MINISTEER_NESTED_PYTEST")), reason="already inside a pytest run")
def test_docs_prints_stay_out_of_the_log():
    """A docs code block's print() is captured like a test's (pytest-markdown-docs turns capture off)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "docs/01-model-and-sites.md"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, MINISTEER_NESTED_PYTEST="1"))
    assert run.returncode == 0, run.stdout[-3000:]
    assert "This config has" not in run.stdout and "| site | shape | meaning |" not in run.stdout
