"""Run manifests: the resolved recipe plus versions, seed, git sha, times and counts, written beside outputs.

Any result on disk can then be traced to exactly what produced it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from prmkit.recipe import dump_recipe

TRACKED_PACKAGES = ("prmkit", "torch", "transformers", "tokenizers", "datasets", "math-verify", "vllm", "accelerate")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_sha(cwd: Path | None = None) -> str | None:
    """The commit of the working directory's repository (with '-dirty' when it has changes), if any."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunManifest:
    """Writes `recipe.yaml` at the start of a run and `manifest.json` at its start and end."""

    def __init__(self, out_dir: Path, command: str, recipe: BaseModel, recipe_path: str | None) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.recipe = recipe
        self._t0 = time.perf_counter()
        self.data: dict[str, Any] = {
            "command": command,
            "recipe_path": recipe_path,
            "argv": sys.argv,
            "seed": getattr(recipe, "seed", None),
            "versions": package_versions(),
            "git_sha": git_sha(),
            "started": _now(),
            "finished": None,
            "wall_s": None,
            "status": "running",
            "counts": {},
        }
        (self.out_dir / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
        self._write()

    def _write(self) -> None:
        (self.out_dir / "manifest.json").write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")

    def finish(self, counts: dict[str, Any], status: str = "complete") -> None:
        self.data.update(
            finished=_now(), wall_s=round(time.perf_counter() - self._t0, 3), status=status, counts=counts
        )
        self._write()
