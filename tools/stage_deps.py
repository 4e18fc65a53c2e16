"""The import graph of the package, read from its source (no module is imported), and the ``dvc.yaml`` module
deps it implies: ``python tools/stage_deps.py`` rewrites them, ``--check`` fails when they differ."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "fer_age"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_imports(module: str) -> set[str]:
    """The package modules that ``module`` imports anywhere in its body (function-level imports too)."""
    tree = ast.parse((SOURCE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found |= {alias.name for alias in node.names}
            elif node.module.startswith(f"{PACKAGE}."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{PACKAGE}.")}
    return {m for m in found if (SOURCE / f"{m}.py").is_file()}


def closure(*modules: str) -> set[str]:
    """``modules`` and everything they import, directly or not."""
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(module_imports(module) - seen)
    return seen


def graph() -> dict[str, set[str]]:
    return {p.stem: module_imports(p.stem) for p in sorted(SOURCE.glob("*.py"))}


def refresh_dvc_yaml(path: Path) -> None:
    """Rewrite the ``src/fer_age/*.py`` deps of every stage in dvc.yaml from the import graph."""
    lines, out, module = path.read_text().splitlines(), [], None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("cmd: fer-age "):
            module = stripped.split()[2]
        if stripped.startswith("- src/fer_age/"):
            if module is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out += [f"{indent}- src/fer_age/{m}.py" for m in sorted(closure("cli", module) | {"__init__"})]
                module = None
            continue
        out.append(line)
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    import sys

    dvc_yaml = SOURCE.parents[1] / "dvc.yaml"
    before = dvc_yaml.read_text()
    if "--check" in sys.argv[1:]:
        refresh_dvc_yaml(dvc_yaml)
        after = dvc_yaml.read_text()
        dvc_yaml.write_text(before)
        if after != before:
            sys.exit("dvc.yaml's module deps differ from the import graph: run `make deps`")
    else:
        refresh_dvc_yaml(dvc_yaml)
