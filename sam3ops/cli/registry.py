"""``sam3ops register``, ``promote``, ``rollback``, ``pull``, ``versions`` and ``rank``: the model registry."""

from __future__ import annotations

from pathlib import Path

import click

from sam3ops.cli.options import optional_bool
from sam3ops.registry import DEFAULT_ALIAS, DEFAULT_NAME

_NAME_HELP = "Registered model name."


@click.command()
@click.option("--run-id", required=True, help="A convert run (or a download/init run: the source checkpoint).")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
def register(run_id: str, name: str) -> None:
    """Register the logged model RUN made as a new version of the model (no copy: an MLflow pyfunc with the
    raw files, its serving code and its requirements inside).

    Version tags: format, precision, parity, weights_commit, weights_random (+ TensorRT version, GPU and
    compute capability for engines, bench.* from the latest benchmark of the artifact). A conversion
    that failed parity is refused. Registering the same run again returns its version.
    """
    from sam3ops.registry import register as register_run

    result = register_run(run_id=run_id, name=name)
    tags = result.tags
    what = f"{tags.get('format')}, precision {tags.get('precision')}, parity {tags.get('parity')}"
    if tags.get("weights_random") == "true":
        what += ", RANDOM weights"
    if result.reused:
        click.echo(f"run {run_id} is already {name} version {result.version} ({what})")
    else:
        click.echo(f"run {run_id} -> {name} version {result.version} ({what}) (run {result.register_run_id})")


@click.command()
@click.option("--version", "version", required=True, help="The version to promote.")
@click.option("--alias", default=DEFAULT_ALIAS, show_default=True, help="The alias to point at it.")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
@optional_bool("--allow-random", "Promote a version with RANDOM weights (tests and demos).")
@click.option("--target-gpu", default="", help="The GPU the backend runs on; required for TensorRT engines "
                                                "(a part of the name is enough, e.g. H100).")
@click.option("--reason", default="", help="Why: recorded with who and when.")
def promote(version, alias, name, allow_random, target_gpu, reason) -> None:
    """Point ALIAS (default production) at VERSION; the previous holder keeps previous-ALIAS.

    Refused: failed parity, random weights (unless --allow-random), an engine built for another GPU
    than --target-gpu. Concurrent promotions of one model take turns (a lock in the registry).
    """
    from sam3ops.registry import promote as promote_version

    _echo_alias_move(promote_version(version=version, name=name, alias=alias, allow_random=allow_random,
                                     target_gpu=target_gpu or None, reason=reason))


@click.command()
@click.option("--alias", default=DEFAULT_ALIAS, show_default=True)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
@click.option("--reason", default="", help="Why: recorded with who and when.")
def rollback(alias, name, reason) -> None:
    """Give ALIAS back to the version holding previous-ALIAS (the two swap: a second rollback undoes it)."""
    from sam3ops.registry import rollback as rollback_alias

    _echo_alias_move(rollback_alias(name=name, alias=alias, reason=reason))


def _echo_alias_move(result) -> None:
    if result.action == "unchanged":
        click.echo(f"{result.name}@{result.alias} already is version {result.version}: nothing changed")
        return
    was = f"was {result.previous}, now {result.name}@previous-{result.alias}" if result.previous else "was unset"
    click.echo(f"{result.name}@{result.alias} -> version {result.version} ({result.action}; {was}) "
               f"(run {result.run_id})")


@click.command()
@click.option("--alias", default=None, help=f"Pull the version holding this alias  [default: {DEFAULT_ALIAS}]")
@click.option("--version", "version", default=None, help="Pull this version instead of an alias.")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
@click.option("--dest", required=True, type=click.Path(path_type=Path),
              help="Folder to fill (an earlier pull there is replaced; anything else is refused).")
@optional_bool("--force", "Take a TensorRT engine built for another GPU or TensorRT version.")
def pull(alias, version, name, dest, force) -> None:
    """Download a registered version's files into DEST, each checked against the version's sha256s.

    Writes MODEL_INFO.json (name, version, alias, format, precision, sha256s). DEST appears whole or
    not at all; an interrupted pull resumes on the next run. Load it with
    `Segmenter.from_dir(DEST)` or `sam3ops predict --weights DEST`.
    """
    from sam3ops.registry import pull as pull_version

    if alias and version:
        raise click.UsageError("give --alias or --version, not both")
    result = pull_version(dest=dest, name=name, version=version, alias=alias, force=force)
    for problem in result.forced:
        click.echo(f"warning: --force: {problem}", err=True)
    if result.up_to_date:
        click.echo(f"{dest} already holds {name} version {result.version} ({result.format}), verified")
    else:
        click.echo(f"{name} version {result.version} ({result.format}, {result.precision}) -> {dest}: "
                   f"{len(result.files)} files, {result.bytes_fetched / 1e6:.1f} MB fetched in {result.seconds:.1f} s, "
                   "sha256 verified")


@click.command()
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
def versions(name) -> None:
    """List the versions of the model: aliases, format, precision, parity, random flag, source run."""
    from sam3ops.registry import list_versions

    for v in list_versions(name):
        tags = v.tags
        aliases = ",".join(v.aliases) or "-"
        click.echo(f"{v.version:>4}  {aliases:<30} {tags.get('format', '?'):<9} {tags.get('precision', '?'):<5} "
                   f"parity={tags.get('parity', '?'):<9} random={tags.get('weights_random', '?'):<5} "
                   f"run={tags.get('source_run_id', '?')}")


@click.command()
@click.option("--name", default=DEFAULT_NAME, show_default=True, help=_NAME_HELP)
@click.option("--metric", default="ms_per_image", show_default=True,
              help="The benchmark metric to rank by (linked to each version's logged model).")
@optional_bool("--higher-is-better", "Rank the highest value first (throughput_img_s); default lowest first.")
@optional_bool("--allow-random", "Rank versions with RANDOM weights too (tests and demos).")
@click.option("--target-gpu", default="", help="The GPU the backend runs on (TensorRT engines built for it).")
def rank(name, metric, higher_is_better, allow_random, target_gpu) -> None:
    """Rank the promotable versions by a benchmark metric of their logged models, best first."""
    from sam3ops.registry.ranking import rank as rank_versions

    ranked = rank_versions(name, metric=metric, ascending=not higher_is_better, allow_random=allow_random,
                           target_gpu=target_gpu or None)
    if not ranked:
        click.echo(f"no promotable version of {name!r} has {metric}: benchmark the versions first "
                   f"(sam3ops bench --weights models:/{name}/VERSION)")
    for place, r in enumerate(ranked, 1):
        parity = "reference" if r.parity_mask_iou is None else f"{r.parity_mask_iou:.4f}"
        click.echo(f"{place:>3}. version {r.version:>4}  {r.model_name:<18} {metric}={r.value:.4g}  "
                   f"parity_mask_iou={parity}  {','.join(r.aliases) or '-'}")


COMMANDS = (register, promote, rollback, pull, versions, rank)
