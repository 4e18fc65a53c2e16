"""The import graph of the package, read from its source (no module is imported), and the ``dvc.yaml`` module
deps it implies: ``python tools/stage_deps.py`` rewrites them, ``--check`` fails when they differ.

Modules are named by their path under ``src/fer_age/`` (``stages/crop.py``, ``config.py``); importing a module of
a subpackage imports the subpackage's ``__init__.py`` too, so that file counts as a dep.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

PACKAGE = "fer_age"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def _file(dotted: str) -> str | None:
    """The file of module ``fer_age.<dotted>`` ('' = the package itself), relative to SOURCE, or None."""
    base = PurePosixPath(*dotted.split(".")) if dotted else PurePosixPath()
    for candidate in (base.with_suffix(".py") if dotted else None, base / "__init__.py"):
        if candidate is not None and (SOURCE / candidate).is_file():
            return str(candidate)
    return None


def _with_packages(module: str) -> set[str]:
    """``module`` and the ``__init__.py`` of every package above it."""
    parts = PurePosixPath(module).parts[:-1]
    return {module} | {str(PurePosixPath(*parts[:i], "__init__.py")) for i in range(len(parts) + 1)}


def module_imports(module: str) -> set[str]:
    """The package modules that ``module`` imports anywhere in its body (function-level imports too)."""
    tree = ast.parse((SOURCE / module).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            dotted = node.module.partition(".")[2]
            for alias in node.names:  # from fer_age.modeling import serving: a module
                found.add(_file(f"{dotted}.{alias.name}" if dotted else alias.name) or "")
            found.add(_file(dotted) or "")
        elif isinstance(node, ast.Import):
            found |= {_file(a.name.partition(".")[2]) or "" for a in node.names if a.name.startswith(f"{PACKAGE}.")}
    return set().union(*(_with_packages(m) for m in found if m)) - {module}


def closure(*modules: str) -> set[str]:
    """``modules`` and everything they import, directly or not (package ``__init__.py`` files included)."""
    seen: set[str] = set()
    pending = [m for module in modules for m in _with_packages(module)]
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            pending.extend(module_imports(module) - seen)
    return seen


def graph() -> dict[str, set[str]]:
    """Every module of the package and the modules it imports."""
    return {
        str(p.relative_to(SOURCE)): module_imports(str(p.relative_to(SOURCE))) for p in sorted(SOURCE.rglob("*.py"))
    }


def stage_module(subcommand_module: str) -> str:
    """The file of a ``fer-age`` sub-command's module (argparse's ``module`` default, e.g. ``crop``)."""
    return f"stages/{subcommand_module}.py"


def stage_deps(subcommand_module: str) -> list[str]:
    """The ``src/fer_age/...`` deps of a stage whose command is ``fer-age <subcommand>``."""
    return [f"src/{PACKAGE}/{m}" for m in sorted(closure("cli.py", stage_module(subcommand_module)))]


def refresh_dvc_yaml(path: Path) -> None:
    """Rewrite the ``src/fer_age/...`` deps of every stage in dvc.yaml from the import graph."""
    lines, out, module = path.read_text().splitlines(), [], None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("cmd: fer-age "):
            module = stripped.split()[2]
        if stripped.startswith(f"- src/{PACKAGE}/"):
            if module is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out += [f"{indent}- {dep}" for dep in stage_deps(module)]
                module = None
            continue
        out.append(line)
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    import sys

    dvc_yaml = SOURCE.parents[1] / "dvc.yaml"
    before = dvc_yaml.read_text()
    refresh_dvc_yaml(dvc_yaml)
    if "--check" in sys.argv[1:]:
        after = dvc_yaml.read_text()
        dvc_yaml.write_text(before)
        if after != before:
            sys.exit("dvc.yaml's module deps differ from the import graph: run `make deps`")
