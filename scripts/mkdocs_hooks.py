"""MkDocs hooks: the docs link to code by relative path; on the site those links land on
the API reference that mkdocstrings generates from the docstrings.

The docs pages link to code the way GitHub renders it, e.g. ``[`glu.pre_mlp_jacobian`](../ministeer/theory/glu.py)``.
For the site this hook

* generates an API page per module of ``ministeer`` (``api/ministeer.theory.glu.md``
  holding ``::: ministeer.theory.glu``), and one per test module the docs link to;
* generates a source page for any other file the docs link to (examples, stubs) and a
  listing page for a linked folder;
* rewrites each link: to a module becomes an autorefs cross-reference
  ``[text][ministeer.theory.glu.pre_mlp_jacobian]`` when its text names a function, so
  ``mkdocs build --strict`` fails on a name that has no documented object.
"""
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[([^\]]*)\]\((\.\./[^)\s#]*)(#[^)\s]*)?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
SKIP_MODULES = {"ministeer.exercises.solutions", "ministeer.__main__"}  # solutions: an instructor may delete it


def _modules():
    """Dotted names of every module of the package, in path order."""
    names = []
    for path in sorted((ROOT / "ministeer").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in SKIP_MODULES and "__pycache__" not in parts:
            names.append(name)
    return names


def _linked_targets(docs_dir):
    """Repository paths (relative to the root) that docs pages link to, outside docs/."""
    found = set()
    for page in Path(docs_dir).glob("*.md"):
        text = FENCE.sub("", page.read_text("utf8"))
        for _, target, _ in LINK.findall(text):
            path = (Path(docs_dir) / target).resolve()
            if path.exists() and ROOT in path.parents:
                found.add(path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else ""))
    return found


def _page_for(target):
    """(generated page's src path, identifier of the module or None) for a repository path."""
    if target.startswith("ministeer/"):
        parts = target.rstrip("/").removesuffix(".py").split("/")
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        return f"api/{module}.md", module
    if target.startswith("tests/") and target.endswith(".py"):
        module = Path(target).stem
        return f"api/tests/{module}.md", module
    return f"source/{target.rstrip('/')}{'/index' if target.endswith('/') else ''}.md", None


def _object(module, text):
    """The documented object a link's text names: `glu.pre_mlp_jacobian` in ministeer.theory.glu -> its path."""
    name = re.fullmatch(r"`([A-Za-z_][\w.]*)(?:\(.*\))?`", text.strip())
    if not name or name.group(1).endswith(".py"):
        return module
    words = name.group(1).split(".")
    while len(words) > 1 and words[0] in module.split("."):  # "theory.glu.pre_mlp_jacobian" -> the function
        words = words[1:]
    if words == [module.split(".")[-1]]:  # the text names the module itself
        words = []
    return ".".join([module] + words)


def _source_page(target):
    path = ROOT / target
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith(("_", ".")) and p.suffix in ("", ".py"))
        lines = [f"- [`{p.name}`]({p.name}{'/index' if p.is_dir() else ''}.md)" if (target + p.name) in _GENERATED
                 else f"- `{p.name}`" for p in entries]
        return f"# `{target}`\n\n" + "\n".join(lines) + "\n"
    lang = "python" if path.suffix == ".py" else ""
    return f"# `{target}`\n\n```{lang}\n{path.read_text('utf8').rstrip()}\n```\n"


_GENERATED = set()  # repository paths with a generated source page


def on_files(files, config):
    docs_dir = config["docs_dir"]
    modules = _modules()
    targets = _linked_targets(docs_dir)
    # a linked folder lists its files; give each .py file in it a page as well
    for target in list(targets):
        if target.endswith("/") and not target.startswith("ministeer/"):
            targets |= {(Path(target) / p.name).as_posix() for p in (ROOT / target).glob("*.py")
                        if not p.name.startswith("_")}
    _GENERATED.clear()
    _GENERATED.update(t for t in targets if _page_for(t)[1] is None)
    pages = {f"api/{m}.md": f"# `{m}`\n\n::: {m}\n" for m in modules}
    for target in sorted(targets):
        src, module = _page_for(target)
        if module is not None and src not in pages:  # a test module
            pages[src] = f"# `{target}`\n\n::: {module}\n    options:\n      filters: []\n"
        elif module is None:
            pages[src] = _source_page(target)
    index = ["# API reference", "", "Generated from the docstrings. Each page shows a module's functions "
             "with their signatures and source.", ""]
    index += [f"- [`{m}`]({m}.md)" for m in modules]
    pages["api/index.md"] = "\n".join(index) + "\n"
    for src, content in pages.items():
        files.append(File.generated(config, src, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite links to code outside docs/ (not inside code fences) into site links, and
    drop pytest-markdown-docs' fence options (```python continuation -> ```python)."""
    markdown = re.sub(r"^(\s*```python)[ \t]+[\w ]+$", r"\1", markdown, flags=re.M)
    here = posixpath.dirname(page.file.src_uri)
    docs_dir = Path(config["docs_dir"])

    def rewrite(match):
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        path = (docs_dir / here / target).resolve()
        if not path.exists() or ROOT not in path.parents:
            return match.group(0)  # not ours to rewrite: mkdocs reports it if it is broken
        repo = path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else "")
        src, module = _page_for(repo)
        if module is not None:
            return f"[{text}][{_object(module, text)}]"
        return f"[{text}]({posixpath.relpath(src, here or '.')}{anchor})"

    pieces, last = [], 0
    for fence in FENCE.finditer(markdown):  # leave code blocks alone
        pieces += [LINK.sub(rewrite, markdown[last:fence.start()]), fence.group(0)]
        last = fence.end()
    return "".join(pieces + [LINK.sub(rewrite, markdown[last:])])
