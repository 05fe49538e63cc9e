"""Where a stage runs: in this process (`local`), or as one Ray task per shard on a Ray cluster (`ray`).

Why: a run that outgrows one machine is split into `shard=i/n` runs and joined with `merge_from`; on Ray that
scheduling is prmkit's job, not the user's. The driver plans `launcher.shards` shards, submits one Ray task per
shard (resources as asked) that runs the stage's own shard code into `output_dir/shards/<i>/` (resumable as
always), shows one progress bar over the records the shards write, and merges them with the stage's merge and its
checks, so the merged output equals an unsharded run's, byte for byte (sampling seeds are per record).

Faults: a task whose worker process dies, or whose node is lost, is retried by Ray (`max_retries`) and its shard
resumes where it stopped, so no record is lost or written twice. A shard that fails for good ends the run with an
error naming the shard and its log (`output_dir/shards/<i>.log`). A driver killed and started again with the same
command submits the shards again; finished ones return at once, unfinished ones resume.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from prmkit.errors import PrmkitError, RecipeError
from prmkit.recipe import Section

INSTALL_HINT = "pip install 'prmkit[ray]' (or pip install ray)"


class LauncherSpec(Section):
    """Where the stage runs: here, or as Ray tasks (one per shard) on a Ray cluster."""

    name: Literal["local", "ray"] = "local"
    """local: this process (shard by hand with `shard=i/n` and `merge_from`); ray: one Ray task per shard."""
    address: str | None = None
    """The Ray cluster: `auto` (a running `ray start` cluster on this machine), `host:port`, `ray://host:port`,
    or null to start a private local cluster for this run."""
    shards: int = Field(default=2, ge=1)
    """Shards (Ray tasks) the records are split into."""
    num_cpus: float = Field(default=1, gt=0)
    """CPUs each task reserves; its torch threads follow (PRMKIT_THREADS)."""
    num_gpus: float = Field(default=0, ge=0)
    """GPUs each task reserves (1: one engine per task on its own GPU; 0.5: two tasks share one)."""
    max_retries: int = Field(default=3, ge=0)
    """Times Ray reruns a task whose worker process died or whose node was lost (the shard resumes)."""
    runtime_env: dict[str, Any] = {}
    """Ray's runtime_env for the tasks (env_vars, pip, working_dir, ...); PRMKIT_QUIET and PRMKIT_THREADS are set."""


class LaunchError(PrmkitError):
    """The cluster cannot be reached, or a shard failed for good."""

    exit_code = 1


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RecipeError(f"launcher.name ray: Ray is not installed here; {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """A `host:port` address answers within seconds, or this is an error (ray.init would wait a long time)."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise RecipeError(f"launcher.address {address!r}: expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise LaunchError(
            f"launcher.address {address!r}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with `ray start --head`, or fix the address"
        ) from None


def connect(spec: LauncherSpec) -> Any:
    """ray.init for the spec: a private local cluster (address null), a running one (auto), or a remote one."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    env = dict(spec.runtime_env)
    env_vars = {"PRMKIT_QUIET": "1", "PRMKIT_THREADS": str(max(1, int(spec.num_cpus))), **env.get("env_vars", {})}
    env["env_vars"] = env_vars
    kwargs: dict[str, Any] = {
        "runtime_env": env,
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "warning",
    }
    if spec.address is None:
        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
        return ray
    if spec.address != "auto":
        _check_reachable(spec.address)
    try:
        ray.init(address=spec.address, **kwargs)
    except (ConnectionError, RuntimeError) as exc:
        raise LaunchError(
            f"launcher.address {spec.address!r}: cannot connect to Ray ({exc}); start a cluster with `ray start --head`"
        ) from None
    return ray


def cluster_description(ray: Any) -> dict[str, Any]:
    """What the manifest records of the cluster: nodes, CPUs, GPUs, Ray's version."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    return {
        "ray": ray.__version__,
        "nodes": len(nodes),
        "cpus": resources.get("CPU", 0),
        "gpus": resources.get("GPU", 0),
    }


def _run_shard(command_name: str, recipe: dict[str, Any], recipe_path: str, log: str) -> dict[str, Any]:
    """One shard, in a Ray worker: the stage's own run on its share of the records; its output goes to `log`."""
    from prmkit.commands import COMMANDS, load_builtin_commands
    from prmkit.recipe import validate

    load_builtin_commands()
    command = COMMANDS.get(command_name)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"--- pid {os.getpid()} on {socket.gethostname()}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            rows = command.run(validate(command.recipe, recipe, recipe_path), recipe_path)
        except BaseException as exc:
            from prmkit.manifest import mark_unfinished

            fh.write(traceback.format_exc())
            mark_unfinished("failed", f"{type(exc).__name__}: {exc}")  # also frees the shard folder's lock
            raise
        fh.write(f"done: {json.dumps(rows, default=str)}\n")
    return rows


def _written(folder: Path, files: tuple[str, ...]) -> int:
    total = 0
    for name in files:
        path = folder / name
        if path.exists():
            with open(path, "rb") as fh:
                total += sum(1 for _ in fh)
    return total


def run_on_ray(command: Any, recipe: Any, recipe_path: str) -> dict[str, Any]:
    """The driver: shard, submit, watch, merge; returns the merge's summary rows plus the cluster's."""
    from prmkit.console import progress_bar
    from prmkit.manifest import check_output_dir, lock_output_dir

    spec: LauncherSpec = recipe.launcher
    if not command.shard_files:
        raise RecipeError(f"launcher.name ray: prmkit {command.name} does not run in shards")
    out = Path(recipe.output_dir)
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    lock_output_dir(out)  # one driver per output folder (the merge below takes the same lock again)
    ray = connect(spec)
    cluster = cluster_description(ray)
    root = out / "shards"
    root.mkdir(parents=True, exist_ok=True)
    local = LauncherSpec(name="local").model_dump()
    task = ray.remote(_run_shard)
    refs: dict[Any, int] = {}
    for i in range(spec.shards):
        shard = recipe.model_dump()
        shard.update(output_dir=str(root / str(i)), shard=f"{i}/{spec.shards}", launcher=local)
        ref = task.options(
            num_cpus=spec.num_cpus,
            num_gpus=spec.num_gpus,
            max_retries=spec.max_retries,
            retry_exceptions=False,
            name=f"prmkit-{command.name}-shard-{i}",
        ).remote(command.name, shard, recipe_path, str(root / f"{i}.log"))
        refs[ref] = i
    pending = list(refs)
    shown = 0
    with progress_bar(f"{command.name} on Ray ({spec.shards} shards)", None) as advance:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            for ref in done:
                i = refs[ref]
                try:
                    ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - Ray wraps the task's failure in its own types
                    for other in pending:
                        ray.cancel(other, force=True)
                    cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise LaunchError(
                        f"shard {i}/{spec.shards} of prmkit {command.name} failed ({cause[:300]}); "
                        f"its log: {root / f'{i}.log'}"
                    ) from None
            written = sum(_written(root / str(i), command.shard_files) for i in range(spec.shards))
            if written > shown:
                advance(written - shown)
                shown = written
    merged = recipe.model_copy(update={"merge_from": [str(root / str(i)) for i in range(spec.shards)]})
    rows = command.run(merged, recipe_path)
    _record_launch(out, spec, cluster)
    return {**rows, "ray cluster": f"{cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs"}


def _record_launch(out: Path, spec: LauncherSpec, cluster: dict[str, Any]) -> None:
    """The launcher section and the cluster into the merged run's manifest.json."""
    path = out / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["launcher"] = {**spec.model_dump(), "cluster": cluster}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def launch(command: Any, recipe: Any, recipe_path: str) -> dict[str, Any]:
    """Run `command` as the recipe's launcher says: here, or on Ray (a shard or a merge always runs here)."""
    spec = getattr(recipe, "launcher", None)
    if spec is None or spec.name == "local" or getattr(recipe, "shard", None) or getattr(recipe, "merge_from", None):
        return command.run(recipe, recipe_path)
    return run_on_ray(command, recipe, recipe_path)
