"""A griffe extension for the docs site: docstrings are plain prose, not Markdown.

The docstrings are written for ``help()``: math like ``P = Y [I 0] [Y S]^+`` would read
as a Markdown reference link ``[I 0][Y S]`` and break ``mkdocs build --strict``. This
escapes brackets outside code spans, so they show as written.
"""
import re

import griffe

CODE = re.compile(r"(``.*?``|`[^`]*`)")


def _escape(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("    "):  # an indented block renders as code: leave it
            lines.append(line)
            continue
        parts = CODE.split(line)  # odd parts are code spans
        lines.append("".join(p if i % 2 else p.replace("[", r"\[").replace("]", r"\]") for i, p in enumerate(parts)))
    return "\n".join(lines)


class PlainDocstrings(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _escape(obj.docstring.value)
