"""The package's shape, checked from its source: stage contracts in one place, deps that follow the imports."""

import yaml
from conftest import REPO
from stage_deps import SOURCE, closure, graph, module_imports

from fer_age.cli import parser

STAGE_MODULES = {"sample", "crop", "split", "train", "pool", "evaluate", "explain", "predict", "check"}


def _subcommand_modules() -> dict[str, str]:
    subparsers = next(a for a in parser()._actions if a.dest == "stage")
    return {name: sub.get_default("module") for name, sub in subparsers.choices.items()}


def test_dvc_yaml_deps_list_exactly_the_modules_each_command_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    modules = _subcommand_modules()
    assert {"sample", "crop", "split", "train", "pool", "evaluate"} <= set(stages)
    for name, stage in stages.items():
        body = stage.get("do", stage)
        subcommand = body["cmd"].split()[1]
        expected = {f"src/fer_age/{m}.py" for m in closure("cli", modules[subcommand]) | {"__init__"}}
        declared = {d for d in body["deps"] if isinstance(d, str) and d.startswith("src/")}
        assert declared == expected, f"{name}: missing {expected - declared}, extra {declared - expected}"


def test_stages_import_only_contracts_config_and_helpers():
    for stage in STAGE_MODULES & set(graph()):
        others = closure(stage) - {stage}
        assert not others & STAGE_MODULES, f"{stage} imports the stage(s) {others & STAGE_MODULES}"


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
        assert (SOURCE / f"{module}.py").is_file(), module
        assert "def main(config: Config, args: argparse.Namespace) -> None:" in (SOURCE / f"{module}.py").read_text()


def test_contract_paths_live_in_layout_only():
    for path in SOURCE.glob("*.py"):
        if path.stem in ("layout", "tracking"):
            continue
        text = path.read_text()
        for literal in ('"data/', "'data/", '"crop_report.csv"', '"manifest.csv"', '"training.json"', '"X_{'):
            assert literal not in text, f"{path.name} spells the contract {literal} itself"
    assert "layout" in module_imports("crop") and "layout" in module_imports("evaluate")
