"""The package's shape, checked from its source: stage contracts in one place, deps that follow the imports."""

import re

import yaml
from conftest import REPO
from stage_deps import SOURCE, closure, graph, module_imports, stage_deps

from fer_age.cli import parser

STAGES = "stages/"


def _subcommand_modules() -> dict[str, str]:
    subparsers = next(a for a in parser()._actions if a.dest == "stage")
    return {name: sub.get_default("module") for name, sub in subparsers.choices.items()}


def _stage_files() -> set[str]:
    return {m for m in graph() if m.startswith(STAGES) and not m.endswith("__init__.py")}


def test_dvc_yaml_deps_list_exactly_the_modules_each_command_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    modules = _subcommand_modules()
    assert {"sample", "crop", "split", "train", "pool", "evaluate"} <= set(stages)
    for name, stage in stages.items():
        body = stage.get("do", stage)
        subcommand = body["cmd"].split()[1]
        expected = set(stage_deps(modules[subcommand]))
        declared = {d for d in body["deps"] if isinstance(d, str) and d.startswith("src/")}
        assert declared == expected, f"{name}: missing {expected - declared}, extra {declared - expected}"


def test_stages_import_the_library_never_each_other_and_the_library_never_a_stage():
    stages = _stage_files()
    assert {"stages/crop.py", "stages/train.py", "stages/evaluate.py"} <= stages
    for stage in stages:
        others = closure(stage) & stages - {stage}
        assert not others, f"{stage} imports the stage(s) {others}"
    for module in set(graph()) - stages - {"cli.py"}:
        assert not closure(module) & stages, f"the library module {module} imports a stage"


def test_subpackages_show_the_architecture():
    folders = {m.split("/")[0] for m in graph() if "/" in m}
    assert folders == {"stages", "faces", "modeling", "results", "tracking"}
    for folder in folders:
        assert (SOURCE / folder / "__init__.py").read_text().startswith('"""'), f"{folder} says what it holds"


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for child in edges.get(module, ()):
            assert state.get(child) != 1, f"import cycle: {' -> '.join([*path, child])}"
            if child not in state:
                visit(child, [*path, child])
        state[module] = 2

    for module in edges:
        if module not in state:
            visit(module, [module])


def test_every_cli_module_exists_and_has_a_main():
    for module in set(_subcommand_modules().values()):
        path = SOURCE / STAGES / f"{module}.py"
        assert path.is_file(), module
        assert "def main(config: Config, args: argparse.Namespace) -> None:" in path.read_text()


def test_contract_paths_live_in_contracts_only():
    for path in SOURCE.rglob("*.py"):
        relative = str(path.relative_to(SOURCE))
        if relative in ("contracts.py", "tracking/runs.py"):
            continue
        text = path.read_text()
        for literal in ('"data/', "'data/", '"crop_report.csv"', '"manifest.csv"', '"training.json"', '"X_{'):
            assert literal not in text, f"{relative} spells the contract {literal} itself"
    assert "contracts.py" in module_imports("stages/crop.py") and "contracts.py" in module_imports("stages/evaluate.py")


def test_no_module_is_over_300_lines_and_stages_are_short_commands():
    for module in graph():
        lines = len((SOURCE / module).read_text().splitlines())
        assert lines <= 300, f"{module} has {lines} lines"
        if module.startswith(STAGES):
            assert lines <= 100, f"the stage {module} has {lines} lines: move its logic into the library"


def test_the_plots_page_template_holds_its_libraries_and_dvc_uses_it():
    """``dvc plots show`` draws offline: the page DVC fills (.dvc/config's plots.html_template) loads no script."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    template = REPO / ".dvc" / config["plots"]["html_template"]
    page = template.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC's CDN tags go into {scripts}
    assert not re.search(r"<script[^>]*\bsrc\s*=", page) and page.count("<script>") == 3
    for library in ("vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"):
        assert f"/* {library} */" in page
