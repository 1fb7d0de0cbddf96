"""The library's layout: a chapter module stands alone (it imports no other chapter module:
what two chapters share lives in lib.train, lib.models or lib.data), and no two library modules
import each other."""

import ast
from pathlib import Path

from lib.paths import REPO_ROOT

LIB = REPO_ROOT / "lib"


def _imports(path: Path, package: str) -> set[str]:
    """Every lib module ``path`` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("lib")}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in LIB.rglob("*.py"):
        name = ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def test_no_chapter_module_imports_another():
    chapters = {n for n in _modules() if n.startswith("lib.chapters.")}
    for name in sorted(chapters):
        others = (_imports(_modules()[name], "lib.chapters") & chapters) - {name}
        assert not others, f"{name} imports {sorted(others)}: move what they share to lib/"


def test_no_two_library_modules_import_each_other():
    mods = _modules()
    deps = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps[name] = {m for m in _imports(path, package) if m in mods and m != name}
    pairs = sorted(
        {
            tuple(sorted((a, b)))
            for a in deps
            for b in deps[a]
            if a in deps.get(b, ())
            # a package importing its own submodule and the submodule its package's
            # siblings is the usual shape, not a cycle
            and not (b.startswith(a + ".") or a.startswith(b + "."))
        }
    )
    assert not pairs, f"modules that import each other: {pairs}"
