"""The package's shape: imports flow one way, in the order the README's module table lists.

Imports are read from the source with ``ast`` (lazy imports inside functions count), and so
are imports a module hides in strings: a child program (``python -c "from ministeer.x import
y"``) or a module it starts (``python -m ministeer.x``). So these tests fail for a new import
circle, for a module that imports from a row below its own in the README table, and for a
module the table forgets.
"""
import ast
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ministeer"
README = ROOT / "README.md"

# Arrows allowed to run up the table: none today. An entry is (importer, imported).
ALLOWED_UPWARD = set()


def module_files():
    """``{dotted module: path}``; a package is named by its folder (its ``__init__``)."""
    files = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    return files


# A string that is a module to run (``"-m", "ministeer.perf.x"``) is an import of that module.
MODULE_ARGUMENT = re.compile(r"ministeer(\.\w+)+")


def string_imports(node):
    """Imports made through a string: the import statements of a child program given as code
    (``python -c PROGRAM``), or the module of ``python -m MODULE``. Prose (docstrings, messages)
    does not parse as code, so it adds nothing."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return []
    text = node.value.strip()
    if MODULE_ARGUMENT.fullmatch(text):
        return [ast.Import(names=[ast.alias(name=text)])]
    if "ministeer" not in text or "import" not in text:
        return []
    try:
        program = ast.parse(textwrap.dedent(node.value))
    except SyntaxError:
        return []
    return [n for n in ast.walk(program)
            if isinstance(n, ast.Import) or (isinstance(n, ast.ImportFrom) and n.level == 0)]


def imported_modules(name, path, files):
    """The package modules ``name`` imports (``from . import x`` resolved to ``x``), also through strings."""
    base = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in [n for n in ast.walk(tree)] + [s for n in ast.walk(tree) for s in string_imports(n)]:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = base.split(".")
            anchor = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (anchor, node.module) if p)
            targets = [f"{module}.{a.name}" for a in node.names] + [module]
        else:
            continue
        for target in targets:
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph():
    files = module_files()
    return {name: imported_modules(name, path, files) for name, path in files.items()}


def readme_rows():
    """The README's module table: one list of top-level components per row."""
    text = README.read_text(encoding="utf-8")
    table = text.split("The code, in the order imports flow", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in table.splitlines()[2:]:
        targets = re.findall(r"\]\((ministeer/[^)]*)\)", line.split("|")[1])
        rows.append([t.removeprefix("ministeer/").removesuffix("/").removesuffix(".py") for t in targets])
    return rows


def component(module):
    """``ministeer.adapters.lora`` -> ``adapters``; the package itself -> ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_import_circles():
    """A circle A -> ... -> A among modules (package __init__ re-exports excluded, as they only gather)."""
    graph = {m: {t for t in ts if not (PACKAGE / Path(*t.split(".")[1:]) / "__init__.py").exists()}
             for m, ts in import_graph().items()}
    state, circles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, f"import circles: {circles}"


def test_readme_table_lists_every_component():
    listed = {c for row in readme_rows() for c in row}
    present = {component(m) for m in module_files()} - {None, "__main__"}
    assert present <= listed, f"modules missing from the README's table: {sorted(present - listed)}"
    assert listed <= present, f"the README's table lists modules that do not exist: {sorted(listed - present)}"


def test_imports_flow_down_the_readme_table():
    """Each row imports only from rows above it or from itself (the package root's re-exports excepted)."""
    row_of = {c: i for i, row in enumerate(readme_rows()) for c in row}
    upward = set()
    for module, targets in import_graph().items():
        src = component(module)
        if src in (None, "__main__"):
            continue
        for target in targets:
            dst = component(target)
            if dst is not None and dst != src and row_of[dst] > row_of[src]:
                upward.add((src, dst))
    assert upward <= ALLOWED_UPWARD, f"imports that run up the README's table: {sorted(upward - ALLOWED_UPWARD)}"


def test_imports_inside_strings_are_seen(tmp_path):
    """Rejects an architecture check blind to a child program: the upward import that a
    ``python -c`` string or a ``python -m`` target makes is an edge of the graph."""
    files = {"ministeer.perf.ab": None, "ministeer.experiments.compare": None, "ministeer.perf.child": None}
    source = tmp_path / "ab.py"
    source.write_text('CHILD = """\nimport sys\nfrom ministeer.experiments.compare import Settings\n"""\n'
                      'ARGS = ["-m", "ministeer.perf.child"]\n'
                      'HELP = "see from ministeer import something, in prose"\n')
    assert imported_modules("ministeer.perf.ab", source, files) == {"ministeer.experiments.compare",
                                                                   "ministeer.perf.child"}
