"""Run manifests: the resolved recipe plus versions, seed, git sha, times and counts, written beside outputs.

Any result on disk can then be traced to exactly what produced it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from prmkit.errors import PrmkitError, RecipeError, StorageError, describe_os_error
from prmkit.recipe import dump_recipe


class RunConflict(PrmkitError):
    """Another run holds the output folder."""

    exit_code = 1


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
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


PLACEMENT_KEYS = frozenset({"launcher"})
"""Keys that say where a run executes (here or on Ray), never what it writes: a run may resume under another."""


def recipe_changes(old: dict[str, Any], recipe: BaseModel, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Dotted keys where a saved recipe (`old`, as loaded from recipe.yaml) and `recipe` differ, shown as
    `key (old -> new)`, sorted; keys in `ignore` and under them do not count."""
    flat_old, flat_new = _flatten(old), _flatten(recipe.model_dump(mode="json"))

    def ignored(key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in ignore)

    changed = sorted(k for k in set(flat_old) | set(flat_new) if flat_old.get(k) != flat_new.get(k) and not ignored(k))
    return [f"{k} ({flat_old.get(k)!r} -> {flat_new.get(k)!r})" for k in changed]


def produced_anything(out_dir: Path) -> bool:
    """Records (a non-empty *.jsonl) or checkpoints (checkpoint-*, final) in the folder."""
    if any(p.stat().st_size for p in out_dir.glob("*.jsonl")):
        return True
    return any(p.is_dir() for p in [*out_dir.glob("checkpoint-*"), out_dir / "final"])


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in 4 MiB blocks (run manifests, the GGUF cache key)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_inputs(recipe: BaseModel, out_dir: Path) -> dict[str, dict[str, Any]]:
    """What each local input of the recipe is now, by dotted key: a data file's size, mtime and content hash; a
    model folder's config.json hash and its weight files' sizes and mtimes (hashing gigabytes of weights on every
    start would cost more than the check is worth). Paths inside the run's own output folder are not inputs."""
    out = out_dir.resolve()
    found: dict[str, dict[str, Any]] = {}
    for key, value in _flatten(recipe.model_dump(mode="json")).items():
        if key == "output_dir" or not isinstance(value, str) or not value or len(value) > 4096:
            continue
        path = Path(value).expanduser()
        try:
            if not path.exists() or out in path.resolve().parents or path.resolve() == out:
                continue
            if path.is_file():
                st = path.stat()
                found[key] = {
                    "path": value,
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "sha256": file_sha256(path),
                }
            elif (path / "config.json").is_file():
                weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
                found[key] = {
                    "path": value,
                    "config_sha256": file_sha256(path / "config.json"),
                    "weights": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in weights},
                }
        except OSError:
            continue
    return found


def changed_inputs(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """The inputs whose content differs (mtime alone is not a change for a data file: its hash decides)."""
    out = []
    for key, was in old.items():
        now = new.get(key)
        if now is None:
            out.append(f"{key} ({was.get('path')} is gone)")
            continue
        same = (
            was.get("sha256") == now.get("sha256")
            if "sha256" in was
            else was.get("config_sha256") == now.get("config_sha256") and was.get("weights") == now.get("weights")
        )
        if not same:
            out.append(f"{key} ({was.get('path')} changed since this run started)")
    return out


def check_same_recipe(
    out_dir: Path, recipe: BaseModel, resume_safe: frozenset[str], inputs: dict[str, dict[str, Any]] | None = None
) -> None:
    """Refuse to resume into an output folder written by a different recipe: its records (or checkpoints: a
    training run resumed under another learning rate is a mixed model) would be mixed with, or silently stand
    for, another run's. Keys in `resume_safe` (devices, batch sizes) may change."""
    old_path = out_dir / "recipe.yaml"
    if not produced_anything(out_dir):
        return  # nothing produced yet (e.g. a run that failed at start): a corrected recipe may take over
    if not old_path.exists() or not (out_dir / "manifest.json").exists():
        raise RecipeError(
            f"{out_dir} holds outputs that no prmkit run wrote here (no recipe.yaml and manifest.json "
            "beside them); use another output_dir, or delete that folder to start afresh"
        )
    try:
        old = yaml.safe_load(old_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return
    changed = recipe_changes(old, recipe, resume_safe | PLACEMENT_KEYS)
    if changed:
        raise RecipeError(
            f"{out_dir} holds a run of a different recipe: {', '.join(changed[:5])}; "
            "use another output_dir, or delete that folder to start afresh"
        )
    try:
        previous = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")).get("inputs") or {}
    except (OSError, json.JSONDecodeError):
        previous = {}
    if inputs is None and previous:
        inputs = fingerprint_inputs(recipe, out_dir)
    moved = changed_inputs(previous, inputs or {}) if previous else []
    if moved:
        raise RecipeError(
            f"{out_dir} holds a run made from other inputs: {', '.join(moved[:5])}; resuming would mix records of "
            "both; use another output_dir, or delete that folder to start afresh"
        )


LOCK_FILE = ".prmkit.lock"
_HELD: dict[str, Any] = {}
"""Output folders this process holds the lock of (resolved path -> open lock file): a process may reopen its own."""
_ACTIVE: list[RunManifest] = []
"""Manifests of runs in progress in this process, so a failure or an interrupt can be written into them."""


def check_output_dir(out_dir: Path) -> None:
    """An output folder must be named: an empty value (an unset $VAR in a CI job) or '.' would write prmkit's
    recipe.yaml, manifest.json and metrics.json over files in the current folder."""
    text = str(out_dir).strip()
    if text in ("", ".", "./") or Path(text).resolve() == Path.cwd().resolve():
        raise RecipeError(
            f"output_dir {str(out_dir)!r} is the current folder; name a folder of its own "
            "(prmkit never writes its outputs over the files of the folder it runs in)"
        )


def lock_output_dir(out_dir: Path) -> Any:
    """One writer per output folder: an exclusive OS lock on `<out_dir>/.prmkit.lock`, which the kernel releases
    when the process dies (so a killed run never leaves a stale lock). A second run fails at once, naming the
    folder and the pid that holds it."""
    import fcntl
    import os

    key = str(out_dir.resolve())
    if key in _HELD:
        return _HELD[key]
    fh = open(out_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise RunConflict(
            f"{out_dir} is being written by another prmkit run (pid {holder}); wait for it to end, "
            "or give this run another output_dir"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    _HELD[key] = fh
    return fh


def release_output_dir(out_dir: Path) -> None:
    fh = _HELD.pop(str(out_dir.resolve()), None)
    if fh is not None:
        fh.close()  # closing the file releases the lock


def mark_unfinished(status: str, error: str) -> None:
    """Write `failed` or `interrupted`, with the error, into every run of this process still in progress."""
    for manifest in list(_ACTIVE):
        try:
            manifest.finish(manifest.data.get("counts") or {}, status=status, error=error)
        except OSError:  # e.g. the full disk that failed the run: the error itself is still reported
            if manifest in _ACTIVE:
                _ACTIVE.remove(manifest)


class RunManifest:
    """Writes `recipe.yaml` at the start of a run and `manifest.json` at its start and end; holds the output
    folder's lock from start to end."""

    def __init__(
        self,
        out_dir: Path,
        command: str,
        recipe: BaseModel,
        recipe_path: str | None,
        resume_safe: frozenset[str] = frozenset(),
    ) -> None:
        self.out_dir = Path(out_dir)
        check_output_dir(self.out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            lock_output_dir(self.out_dir)
        except OSError as exc:
            raise StorageError(f"output_dir {self.out_dir}: cannot write here: {describe_os_error(exc)}") from None
        inputs = fingerprint_inputs(recipe, self.out_dir)  # hashed once: for the resume check and the manifest
        try:
            check_same_recipe(self.out_dir, recipe, resume_safe, inputs)
        except BaseException:
            release_output_dir(self.out_dir)
            raise
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
            "inputs": inputs,
        }
        (self.out_dir / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
        self._write()
        _ACTIVE.append(self)

    def _write(self) -> None:
        (self.out_dir / "manifest.json").write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")

    def finish(self, counts: dict[str, Any], status: str = "complete", error: str | None = None) -> None:
        self.data.update(finished=_now(), wall_s=round(time.perf_counter() - self._t0, 3), status=status, counts=counts)
        if error is not None:
            self.data["error"] = error
        try:
            self._write()
        finally:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            release_output_dir(self.out_dir)
