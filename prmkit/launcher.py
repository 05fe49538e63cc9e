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
from collections.abc import Callable
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
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one task's engine spans. Above 1, each task runs in a placement group of one CPU bundle and this many
    one-GPU bundles packed on one node, and vLLM's Ray executor places its workers there (set the model's
    `vllm.tensor_parallel_size` to the same number and `vllm.engine_kwargs.distributed_executor_backend: ray`)."""
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


def _options(task: Any, spec: LauncherSpec, name: str, groups: dict[int, Any], shard: int) -> Any:
    """A task with the spec's resources and retries (retried when its worker dies, not when it raises); with
    tensor_parallel_size k > 1, inside a placement group of its own (groups[shard]; _wait frees it when it ends)."""
    common = {"max_retries": spec.max_retries, "retry_exceptions": False, "name": name}
    if spec.tensor_parallel_size == 1:
        return task.options(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, **common)
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group([{"CPU": spec.num_cpus}] + [{"GPU": 1.0}] * spec.tensor_parallel_size, "STRICT_PACK")
    groups[shard] = group
    strategy = PlacementGroupSchedulingStrategy(
        placement_group=group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
    )
    return task.options(num_cpus=spec.num_cpus, num_gpus=0, scheduling_strategy=strategy, **common)


def check_placeable(ray: Any, spec: LauncherSpec) -> None:
    """With tensor_parallel_size k > 1 each task needs one node with num_cpus CPUs and k GPUs (STRICT_PACK:
    tensor parallelism across nodes is slow); a cluster without such a node is an error now, not a hang."""
    k = spec.tensor_parallel_size
    if k == 1:
        return
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("GPU", 0) >= k and r.get("CPU", 0) >= spec.num_cpus for r in nodes):
        most = max((r.get("GPU", 0) for r in nodes), default=0)
        raise LaunchError(
            f"launcher.tensor_parallel_size {k}: no node of the cluster has {k} GPUs and {spec.num_cpus:g} CPU(s) "
            f"(the most GPUs on one node: {most:g}); lower it or add a larger node"
        )


def _wait(
    ray: Any,
    refs: dict[Any, int],
    spec: LauncherSpec,
    what: str,
    log_of: Callable[[int], Path],
    written: Callable[[], int],
    label: str,
    groups: dict[int, Any],
) -> list[Any]:
    """Wait for every shard task with one progress bar over the records written; the first shard that fails for
    good cancels the rest and ends the run naming the shard and its log. Returns the tasks' results by shard."""
    from prmkit.console import progress_bar

    results: list[Any] = [None] * spec.shards
    pending = list(refs)
    shown = 0
    with progress_bar(label, None) as advance:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            for ref in done:
                i = refs[ref]
                try:
                    results[i] = ray.get(ref)
                    _remove(groups, [i])  # its GPUs go to the next task waiting for a group
                except Exception as exc:  # noqa: BLE001 - Ray wraps the task's failure in its own types
                    for other in pending:
                        ray.cancel(other, force=True)
                    _remove(groups, list(groups))
                    cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise LaunchError(
                        f"shard {i}/{spec.shards} of {what} failed ({cause[:300]}); its log: {log_of(i)}"
                    ) from None
            now = written()
            if now > shown:
                advance(now - shown)
                shown = now
    return results


def _remove(groups: dict[int, Any], shards: list[int]) -> None:
    """Free the placement groups (their GPUs) of tasks that are over."""
    from ray.util.placement_group import remove_placement_group

    for i in shards:
        group = groups.pop(i, None)
        if group is not None:
            remove_placement_group(group)


def run_on_ray(command: Any, recipe: Any, recipe_path: str) -> dict[str, Any]:
    """The driver: shard, submit, watch, merge; returns the merge's summary rows plus the cluster's."""
    from prmkit.manifest import check_output_dir, lock_output_dir

    spec: LauncherSpec = recipe.launcher
    out = Path(recipe.output_dir)
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    lock_output_dir(out)  # one driver per output folder (the merge below takes the same lock again)
    ray = connect(spec)
    cluster = cluster_description(ray)
    root = out / "shards"
    root.mkdir(parents=True, exist_ok=True)
    local = LauncherSpec(name="local").model_dump()
    check_placeable(ray, spec)
    task = ray.remote(_run_shard)
    refs: dict[Any, int] = {}
    groups: dict[int, Any] = {}
    for i in range(spec.shards):
        shard = recipe.model_dump()
        shard.update(output_dir=str(root / str(i)), shard=f"{i}/{spec.shards}", launcher=local)
        ref = _options(task, spec, f"prmkit-{command.name}-shard-{i}", groups, i).remote(
            command.name, shard, recipe_path, str(root / f"{i}.log")
        )
        refs[ref] = i
    _wait(
        ray,
        refs,
        spec,
        f"prmkit {command.name}",
        lambda i: root / f"{i}.log",
        lambda: sum(_written(root / str(i), command.shard_files) for i in range(spec.shards)),
        f"{command.name} on Ray ({spec.shards} shards)",
        groups,
    )
    merged = recipe.model_copy(update={"merge_from": [str(root / str(i)) for i in range(spec.shards)]})
    rows = command.run(merged, recipe_path)
    return {**rows, "ray cluster": record_launch(out, spec, cluster)}


def _score_shard(prm: dict[str, Any], seed: int, rows: list[dict[str, Any]], path: str, chunk_size: int) -> dict:
    """One scoring shard, in a Ray worker: its records scored into `path`, resumably (a retried task goes on)."""
    from prmkit.data.shards import ResumableWriter
    from prmkit.records import Record
    from prmkit.score.recipe import PRMSpec, build_scorer
    from prmkit.score.scoring import LazyScorer, score_into

    spec = PRMSpec.model_validate(prm)
    records = [Record.from_dict(r) for r in rows]
    with ResumableWriter(Path(path)) as writer, LazyScorer(lambda: build_scorer(spec, seed)) as scorer:
        return score_into(records, writer, scorer, chunk_size, f"scoring {Path(path).name}")


def score_on_ray(
    spec: LauncherSpec, prm: Any, seed: int, records: list[Any], writer: Any, chunk_size: int, name: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score `records` as spec.shards Ray tasks (record k in shard k mod n, so a rerun gives each shard the same
    records and it resumes), then append what `writer` lacks in record order. Returns the shards' compute
    counters and the cluster's description (bench's scoring on Ray)."""
    from prmkit.data.shards import read_records

    ray = connect(spec)
    cluster = cluster_description(ray)
    root = writer.path.parent / f"{writer.path.stem}.shards"
    root.mkdir(parents=True, exist_ok=True)
    check_placeable(ray, spec)
    task = ray.remote(_score_shard)
    refs: dict[Any, int] = {}
    groups: dict[int, Any] = {}
    for i in range(spec.shards):
        rows = [r.to_dict() for k, r in enumerate(records) if k % spec.shards == i and r.id not in writer]
        if not rows:
            continue
        ref = _options(task, spec, f"prmkit-score-{name}-shard-{i}", groups, i).remote(
            prm.model_dump(), seed, rows, str(root / f"{i}.jsonl"), chunk_size
        )
        refs[ref] = i
    parts = _wait(
        ray,
        refs,
        spec,
        f"scoring {name}",
        lambda i: root / f"{i}.jsonl",
        lambda: sum(_written(root, (f"{i}.jsonl",)) for i in range(spec.shards)),
        f"scoring {name} on Ray ({spec.shards} shards)",
        groups,
    )
    scored = {r.id: r for i in range(spec.shards) for r in read_records(root / f"{i}.jsonl", missing_ok=True)}
    for r in records:
        if r.id not in writer:
            writer.write(scored[r.id])
    writer.mark_complete(len(records))
    return [p for p in parts if p], cluster


def record_launch(out: Path, spec: LauncherSpec, cluster: dict[str, Any]) -> str:
    """The launcher section and the cluster into the run's manifest.json; returns the cluster in words."""
    path = out / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["launcher"] = {**spec.model_dump(), "cluster": cluster}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return f"{cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs"


def launch(command: Any, recipe: Any, recipe_path: str) -> dict[str, Any]:
    """Run `command` as the recipe's launcher says: here, or on Ray (a shard or a merge always runs here)."""
    spec = getattr(recipe, "launcher", None)
    if not command.shard_files:  # a stage that puts its own inner work on Ray (bench: its scoring)
        return command.run(recipe, recipe_path)
    if spec is None or spec.name == "local" or getattr(recipe, "shard", None) or getattr(recipe, "merge_from", None):
        return command.run(recipe, recipe_path)
    return run_on_ray(command, recipe, recipe_path)
