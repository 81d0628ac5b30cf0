// Render the math that pymdownx.arithmatex (generic mode) leaves as \( \) and \[ \] spans.
// KaTeX is served from this site (docs/assets/katex/), so math renders offline.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    throwOnError: false,
  });
});
