"""The `stylediscover sweep` command group. Every command that takes a sweep takes its name (under --storage-path) or
its folder; torch and Ray are imported only inside the commands that need them."""

import json
import shutil
import sys
from pathlib import Path

import click

from stylediscover.errors import friendly_errors
from stylediscover.options import parse_overrides

STORAGE_OPTION = click.option("--storage-path", default="runs/sweeps", show_default=True,
                              help="Where sweeps live (the spec's storage_path), for a sweep given by name.")
SWEEP_ARGUMENT = click.argument("name", metavar="SWEEP")


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group()
def sweep() -> None:
    """Hyper-parameter sweeps: Ray Tune + Optuna, tracked in MLflow. SWEEP is a sweep's name under --storage-path,
    or its folder."""


@sweep.command("run")
@click.argument("spec_path", metavar="SPEC.yaml", type=click.Path(path_type=Path))
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a dotted spec field.")
@friendly_errors
def sweep_run(spec_path: Path, address: str | None, overrides: tuple[str, ...]) -> None:
    """Runs a sweep, then selects and exports the best attention-based trial and prints its ranking with reasons.

    \b
    Examples:
      stylediscover sweep run sweeps/quickstart.yaml
      stylediscover sweep run sweeps/ffhq512.yaml --address ray://head:10001
      ray job submit --address http://head:8265 --working-dir . -- \\
          stylediscover sweep run sweeps/ffhq512.yaml --address auto
    """
    from stylediscover.sweep.preflight import preflight
    from stylediscover.sweep.ranking import explanation
    from stylediscover.sweep.spec import load_spec

    spec = load_spec(spec_path, parse_overrides(overrides, str(spec_path)))
    preflight(spec, spec_path, address)
    from stylediscover.sweep.runner import run_sweep  # imports Ray: only once the checks have passed

    _echo_lines(explanation(run_sweep(spec, address)))


@sweep.command("resume")
@SWEEP_ARGUMENT
@STORAGE_OPTION
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray).")
@click.option("--redo-finish", is_flag=True,
              help="On a finished sweep: redo its selection, export, held-out test and MLflow record.")
@friendly_errors
def sweep_resume(name: str, storage_path: str, address: str | None, redo_finish: bool) -> None:
    """Continues an interrupted sweep (finished trials are not re-run), then selects and exports. A finished sweep
    is left as it is (exit status 0) unless --redo-finish.

    \b
    Examples:
      stylediscover sweep resume quickstart-20261126-101500
      stylediscover sweep resume runs/sweeps/quickstart-20261126-101500 --redo-finish
    """
    import time

    from stylediscover.sweep.ranking import explanation
    from stylediscover.sweep.records import finished_summary, load_saved_settings

    settings = load_saved_settings(name, storage_path)
    done = finished_summary(settings.storage)
    if done is not None and not redo_finish:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(done["finished"])) if "finished" in done else "earlier"
        click.echo(f"sweep {settings.name} finished ({when}): nothing to resume. `stylediscover sweep best "
                   f"{settings.storage}` shows its ranking; --redo-finish redoes its selection, export and held-out "
                   "test.")
        return
    from stylediscover.sweep.preflight import preflight
    from stylediscover.sweep.records import load_saved_spec

    spec = load_saved_spec(name, storage_path)
    preflight(spec, spec.storage / "spec.json", address)
    from stylediscover.sweep.runner import resume_sweep

    _echo_lines(explanation(resume_sweep(str(spec.storage), storage_path, address, redo_finish)))


@sweep.command("list")
@STORAGE_OPTION
@friendly_errors
def sweep_list(storage_path: str) -> None:
    """Lists the sweeps under the storage path: when each started, trials planned and started, whether it finished
    and what it selected. Reads files only (no Ray, no MLflow, nothing written).

    \b
    Example:
      stylediscover sweep list --storage-path runs/sweeps
    """
    from stylediscover.sweep.catalog import list_sweeps

    entries = list_sweeps(Path(storage_path))
    if not entries:
        click.echo(f"no sweeps under {Path(storage_path).resolve()}")
    for e in entries:
        detail = e.problem or e.selected
        click.echo(f"{e.name:<32} {e.started}  {e.trial_folders:>3}/{e.planned:<3} trials  {e.state:<22} {detail}")


@sweep.command("status")
@SWEEP_ARGUMENT
@STORAGE_OPTION
@click.option("--watch", is_flag=True, help="Redraw the table every --interval seconds until the sweep ends.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True, help="Seconds.")
@friendly_errors
def sweep_status(name: str, storage_path: str, watch: bool, interval: float) -> None:
    """Lists the trials of a sweep with their outcome and best evaluation so far; reads, never writes.

    \b
    Examples:
      stylediscover sweep status quickstart-20261126-101500   # make quickstart names it quickstart-<time>
      stylediscover sweep status runs/sweeps/quickstart-20261126-101500 --watch
    """
    import time

    from stylediscover.sweep.records import load_saved_settings, recorded_trials

    spec = load_saved_settings(name, storage_path)
    while True:
        records = recorded_trials(spec)
        if watch and sys.stdout.isatty():
            click.clear()
        click.echo(f"{'trial':<28} {'attention':<10} {'outcome':<14} {'step':>5} {'n_disc':>6} {'robust':>6} "
                   f"{'score':>7}  params")
        for r in sorted(records, key=lambda r: r.trial_id):
            robust = "-" if r.robust_n_discovered is None else r.robust_n_discovered
            click.echo(f"{r.trial_id:<28} {r.attention:<10} {r.outcome:<14} {r.step:>5} {r.n_discovered:>6} "
                       f"{robust:>6} {r.score:>7.4f}  {r.params}")
        running = sum(r.outcome == "running" for r in records)
        if not watch or ((spec.storage / "summary.json").exists() and not running):
            return
        click.echo(f"{running} running; refreshed {time.strftime('%H:%M:%S')}; "
                   "Ctrl-C stops watching (not the sweep)")
        time.sleep(interval)


@sweep.command("best")
@SWEEP_ARGUMENT
@STORAGE_OPTION
@friendly_errors
def sweep_best(name: str, storage_path: str) -> None:
    """Prints the sweep's ranking with its reasons: every trial with its searched values and validation figures, what
    decided between the first two, the Pareto front, the selection's held-out figures and the next commands (as
    `sweep run` ends; before the sweep finished, from the trials recorded so far).

    \b
    Example:
      stylediscover sweep best quickstart-20261126-101500
    """
    from stylediscover.sweep.ranking import explanation, live_summary
    from stylediscover.sweep.records import SUMMARY_FILE, load_saved_settings, recorded_trials

    spec = load_saved_settings(name, storage_path)
    path = spec.storage / SUMMARY_FILE
    summary = json.loads(path.read_text()) if path.is_file() else {}
    if "ranking" not in summary:  # unfinished, or finished before summaries held their ranking
        summary |= live_summary(spec, recorded_trials(spec))
    _echo_lines(explanation(summary))


@sweep.command("export")
@SWEEP_ARGUMENT
@STORAGE_OPTION
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Overwrite an existing export.")
@friendly_errors
def sweep_export(name: str, storage_path: str, out: Path, force: bool) -> None:
    """Exports the selected trial's best evaluation (directions + manifest, .npy, traversal grid, attention map),
    with the sweep's held-out test of it (heldout.json and the manifest's `heldout` block) once the sweep ran it; the
    folder is built beside --out and renamed into place, so it is never half-written.

    \b
    Example:
      stylediscover sweep export quickstart-20261126-101500 --out exported/
    """
    import os

    from stylediscover.errors import InputError
    from stylediscover.outputs import check_outputs
    from stylediscover.sweep.finish import export_trial, replace_folder
    from stylediscover.sweep.records import finished_summary, load_saved_spec, trial_records
    from stylediscover.sweep.selection import select_best

    check_outputs([out], force)
    if out.exists() and not (out / "directions.json").is_file():
        raise InputError(out, "exists and is not an export; --force replaces exports only", "--out")
    spec = load_saved_spec(name, storage_path)
    best = select_best(trial_records(spec), spec.selection.rule, spec.selection.attention_only)
    if best is None:
        raise InputError(spec.storage, "no finished attention-based trial to export")
    stage = out.with_name(f".{out.name}-{os.getpid()}")
    try:
        export_trial(best, stage)
        tested = spec.storage / "best" / "heldout.json"
        if tested.is_file() and (finished_summary(spec.storage) or {}).get("trial_id") == best.trial_id:
            from stylediscover.directions import record_heldout
            from stylediscover.heldout import heldout_block

            shutil.copy2(tested, stage / "heldout.json")
            record_heldout(stage / "directions.json", heldout_block(json.loads(tested.read_text())))
        replace_folder(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    click.echo(f"exported trial {best.trial_id} to {out}")
