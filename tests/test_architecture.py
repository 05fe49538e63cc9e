"""Where code lives: nothing imports a stage's `command.py` but the command registry (prmkit/commands.py) and the
tests. A stage's command module registers a CLI command and loads everything it uses; what other stages need
lives in the stage's library modules (recipe.py, scoring.py, fit.py, ...) or in the shared layers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "prmkit" / "commands.py"


def command_imports(path: Path) -> list[str]:
    """`module:line` for each import of a `prmkit.<stage>.command` module (or of `command` from a stage package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "prmkit" and len(parts) >= 3 and parts[2] == "command":
                found.append(f"{name} (line {node.lineno})")
                break
    return found


def test_only_the_registry_imports_a_stage_command_module():
    offenders = {}
    for folder in ("prmkit", "benchmarks", "scripts", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == REGISTRY:
                continue
            hits = command_imports(path)
            if hits:
                offenders[str(path.relative_to(ROOT))] = hits
    assert not offenders, f"import a stage's library module or go through prmkit.commands.COMMANDS: {offenders}"


def test_the_rule_sees_every_spelling_of_such_an_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import prmkit.sample.command\nfrom prmkit.score.command import run\n"
        "from prmkit.search import command\ndef f():\n    from prmkit.train.command import fit\n"
        "from prmkit.score.scoring import LazyScorer\n"
    )
    assert len(command_imports(probe)) == 4
    assert command_imports(REGISTRY)  # the registry itself does import them


STAGES = ("world", "sample", "annotate", "train", "score", "bench", "search", "report", "export", "view")
SHARED = ("engines", "formats", "grading", "data", "models", "tasks")


def stage_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
            else []
        )
        found += [f"{n} (line {node.lineno})" for n in names if n.split(".")[:2] in [["prmkit", s] for s in STAGES]]
    return found


def test_the_shared_layers_import_no_stage():
    """engines, formats, grading, data, models and tasks serve the stages; a stage never serves them."""
    paths = [p for d in SHARED for p in sorted((ROOT / "prmkit" / d).rglob("*.py"))]
    paths += [ROOT / "prmkit" / f for f in ("sections.py", "recipe.py", "steps.py", "records.py", "manifest.py")]
    offenders = {str(p.relative_to(ROOT)): stage_imports(p) for p in paths if stage_imports(p)}
    assert not offenders, offenders
