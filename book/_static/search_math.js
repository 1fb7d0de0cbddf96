// Search results on the search page quote each page's text around the word searched for. Sphinx
// takes that text from the page's HTML before MathJax has typeset it, so a formula would show as
// raw TeX ("\(\alpha^c_k\)"). Here each formula is written in plain Unicode instead (Greek
// letters, operators, fractions as a/b), without its delimiters, before the quote is cut.
(() => {
  const SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η",
    theta: "θ", lambda: "λ", mu: "μ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ",
    psi: "ψ", omega: "ω", Delta: "Δ", Sigma: "Σ", Omega: "Ω", sum: "∑", prod: "∏", partial: "∂",
    nabla: "∇", times: "×", cdot: "·", cdots: "⋯", ldots: "…", dots: "…", geq: "≥", ge: "≥",
    leq: "≤", le: "≤", neq: "≠", approx: "≈", sim: "∼", in: "∈", infty: "∞", to: "→",
    rightarrow: "→", leftarrow: "←", pm: "±", sqrt: "√", odot: "⊙", circ: "∘", max: "max",
    min: "min", log: "log", exp: "exp", mathbb: "", quad: " ", qquad: " ", left: "", right: "",
    Big: "", big: "", mathrm: "", text: "", mathbf: "", operatorname: "", hat: "", tilde: "",
  };
  const group = (t) => (/^[\w.^]+$/.test(t.trim()) ? t.trim() : `(${t.trim()})`);
  const plain = (tex) => tex
    .trim()
    .replace(/^\\[([]/, "")
    .replace(/\\[)\]]$/, "")
    .replace(/\\(begin|end)\{[^{}]*\}/g, "")
    .replace(/\\\\|&/g, " ")
    .replace(/([_^])\{([^{}]*)\}/g, "$1$2")
    .replace(/\\([A-Za-z]+)/g, (m, name) => (name === "frac" ? m : name in SYMBOLS ? SYMBOLS[name] : name))
    .replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, (m, a, b) => `${group(a)}/${group(b)}`)
    .replace(/\\[,;! ]/g, " ")
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
  const patch = () => {
    if (typeof Search === "undefined" || Search._mathPatched) return;
    const htmlToText = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math").forEach((el) => { el.textContent = " " + plain(el.textContent) + " "; });
      return htmlToText(doc.documentElement.outerHTML, anchor);
    };
    Search._mathPatched = true;
  };
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
