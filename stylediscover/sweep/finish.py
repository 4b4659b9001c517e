"""The end of a sweep: the selection with its ranking and reasons (ranking.py), the export of the selected trial with
its held-out test and static explorer, its registration as an MLflow model, and the sweep's record on the MLflow parent
run and in summary.json.

Every redo of the finish (after an interruption, or `sweep resume --redo-finish`) replaces each part whole: the export
and its held-out test are built in a hidden sibling of `best/` (`.best-<pid>`) and renamed into place, so `best/` is
never an export without its held-out block; summary.json, written last (atomically), marks a finished sweep, so a
finish interrupted at any moment is simply redone by the next resume.
"""

import json
import os
import shutil
import time
from pathlib import Path

import ray

from stylediscover.assessment import assess_test_set, combine_test_sets
from stylediscover.directions import record_heldout
from stylediscover.errors import StylediscoverError
from stylediscover.heldout import headline, heldout_block, heldout_metrics
from stylediscover.sweep.kill import kill_at
from stylediscover.sweep.ranking import decision, heldout_line, markdown, rank_trials, ranking_rows, searched_values
from stylediscover.sweep.records import SUMMARY_FILE, tracker_for, trial_records
from stylediscover.sweep.registry import register_export
from stylediscover.sweep.selection import TrialRecord, pareto_front, select_best
from stylediscover.sweep.spec import SweepSpec
from stylediscover.sweep.tracking import SELECTED_RUN_TAG, SweepTracker

STAGE_PREFIX = ".best-"


class SweepFailed(StylediscoverError):
    """A sweep whose trials failed, or that produced nothing to select; the message says which and why."""


def _failure(spec: SweepSpec, records: list[TrialRecord], best: TrialRecord | None) -> str | None:
    """Why the sweep failed (its failed trials with their parameters and errors, or nothing to select), if it did."""
    failed = [r for r in records if r.outcome == "failed"]
    reasons = [f"trial {r.trial_id} {r.params} failed: {r.error}" for r in failed]
    if best is None:
        usable = [r for r in records if r.outcome in ("finished", "stopped_early")]
        reasons.append(f"no trial to select: none of {len(records)} trials finished" if not usable else
                       f"no trial to select: none of {len(usable)} finished trials matches the selection "
                       f"({spec.selection.rule}, attention_only={spec.selection.attention_only})")
    return "; ".join(reasons) or None


def _trials_picture(spec: SweepSpec, records: list[TrialRecord], summary: dict) -> Path | None:
    """trials.png: every trial's traversal grid (its selected evaluation's) side by side, in ranking order, each
    titled with its rank, id, searched values and figures; None when no trial has one."""
    from stylediscover.plots import side_by_side

    by_id = {r.trial_id: r for r in records}
    panels = []
    for e in summary["ranking"]:
        record = by_id[e["trial_id"]]
        picture = record.checkpoint / "best" / "traversal.png" if record.checkpoint else None
        if picture is None or not picture.is_file():
            continue
        rank = f"#{e['rank']}" if e["rank"] else "unranked"
        mark = " (selected)" if e["trial_id"] == summary.get("trial_id") else ""
        robust = "" if e["robust_n_discovered"] is None else f"robust {e['robust_n_discovered']}, "
        panels.append((f"{rank} {e['trial_id']}{mark}: {e['name']}\n{robust}found {e['n_discovered']}, score "
                       f"{e['score']:.3f}" if e["score"] is not None else f"{rank} {e['trial_id']}", picture))
    return side_by_side(panels, spec.storage / "trials.png") if panels else None


def replace_folder(new: Path, dest: Path) -> None:
    """Renames `new` to `dest`, the previous `dest` first moved aside (to a hidden sibling) then removed: `dest` is at
    every moment the old folder, the new one, or (between two renames) absent, never a mix."""
    old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
    if dest.exists():
        os.rename(dest, old)
    os.rename(new, dest)
    shutil.rmtree(old, ignore_errors=True)


def export_selected(spec: SweepSpec, best: TrialRecord) -> tuple[Path, dict | None]:
    """The selected trial's export with its held-out test (when selection.test_sets > 0) built in a hidden sibling
    folder, then renamed to <storage>/best; returns that folder and the test's headline figures. Leftovers of an
    interrupted finish are removed first."""
    for leftover in spec.storage.glob(f"{STAGE_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    stage = spec.storage / f"{STAGE_PREFIX}{os.getpid()}"
    export_trial(best, stage)
    heldout = confirm(spec, stage) if spec.selection.test_sets else None
    final = spec.storage / "best"
    replace_folder(stage, final)
    return final, heldout


def _version_note(spec: SweepSpec, summary: dict) -> str:
    """The registered model version's description (markdown): its sweep, trial, figures and spec."""
    robust = (f"robust count {summary['robust_n_discovered']}, weakest margin {summary['weakest_margin']:.3f}, "
              if summary.get("weakest_margin") is not None else "")
    lines = [f"Selected by sweep `{spec.name}` (stored in `{spec.storage}`, rule `{spec.selection.rule}`): trial "
             f"`{summary['trial_id']}` ({searched_values(summary['params'])}), its evaluation at step "
             f"{summary['step']}.",
             f"On the validation codes: {robust}n_discovered {summary['n_discovered']}, score {summary['score']:.4f}.",
             ("Held-out test: " + heldout_line(summary["heldout"]) + ".") if "heldout" in summary else
             "No held-out test (selection.test_sets is 0).",
             "The traversal grid is the model's artifact `artifacts/traversal.png`; the sweep's ranking is in the "
             "description of the run that logged this model.",
             "Spec (the whole of it is that run's `spec.json`): search space `" + json.dumps(
                 spec.model_dump(mode="json")["search_space"]) + f"`, {spec.num_samples} trials, search "
             f"{spec.search.algorithm} (seed {spec.search.seed}), selection `"
             + json.dumps(spec.selection.model_dump(mode="json")) + "`."]
    return "\n\n".join(lines)


def finish_sweep(spec: SweepSpec, started: float, driver: str) -> dict:
    """Ranks the trials, selects, exports (atomically, see the module docstring), registers, records all on the parent
    MLflow run and marks the selected child run, then writes summary.json; raises SweepFailed (after recording what
    could be) when a trial failed or nothing could be selected. `started`: time.time() when this driver started;
    `driver`: what it is doing ("run", "resume", "redo of the finish"), for the wall time line."""
    from stylediscover.plots import sweep_plot

    tracker = tracker_for(spec)
    records = trial_records(spec, tracker)
    kill_at("selection")
    best = select_best(records, spec.selection.rule, spec.selection.attention_only)
    front = pareto_front([r for r in records if r.outcome in ("finished", "stopped_early")])
    ranking = rank_trials(records, spec.selection.rule, spec.selection.attention_only)
    summary = {"sweep": spec.name, "storage": str(spec.storage), "rule": spec.selection.rule, "trials": len(records),
               "ranking": ranking, "decision": decision(ranking, spec.selection.rule),
               "pareto_front": [r.trial_id for r in front], "tracking_uri": spec.tracking_uri,
               "experiment_id": tracker.experiment_id, "parent_run_id": tracker.parent_id}
    plot = sweep_plot(records, front, spec.storage / "sweep.png", best.trial_id if best else None)
    tags, metrics, folders = {}, {}, {}
    if best is not None:
        summary |= {"trial_id": best.trial_id, "run_id": best.run_id, "step": best.step, "score": best.score,
                    "n_discovered": best.n_discovered, "params": best.params}
        if best.robust_n_discovered is not None:
            summary |= {"robust_n_discovered": best.robust_n_discovered, "weakest_margin": best.weakest_margin}
        out, heldout = export_selected(spec, best)
        explorer = start_explorer(spec, out)
        summary["export"] = str(out)
        if heldout is not None:
            summary["heldout"] = heldout
            metrics |= heldout_metrics(heldout)
        version = register_export(spec.tracking_uri, spec.mlflow.experiment, tracker.parent_id, out,
                                  _version_note(spec, summary))
        summary["model"] = f"models:/{version.name}/{version.version}"
        tags = {"selected.trial_id": best.trial_id, SELECTED_RUN_TAG: best.run_id, "selected.step": best.step,
                "selected.model": summary["model"]}
        tags |= {f"selected.param.{k}": v for k, v in best.params.items()}
        metrics |= {"selected_n_discovered": best.n_discovered, "selected_score": best.score}
        if best.robust_n_discovered is not None:
            metrics |= {"selected_robust_n_discovered": best.robust_n_discovered,
                        "selected_weakest_margin": best.weakest_margin}
        folders["export"] = out
        ray.get(explorer)
    tracker.mark_selected(best.run_id if best else None)
    failure = _failure(spec, records, best)
    if failure:
        summary["failure"] = failure
    summary |= {"driver": driver, "started": (spec.storage / "spec.json").stat().st_mtime, "finished": time.time(),
                "wall_s": time.time() - started}
    pictures = [p for p in (plot, _trials_picture(spec, records, summary)) if p is not None]
    _record(tracker, summary, tags, metrics, pictures, folders, best is not None)
    if failure:
        exported = f"; the best other trial, {best.trial_id}, was exported to {summary['export']}" if best else ""
        raise SweepFailed(f"sweep {spec.name!r}: {failure}{exported}")
    return summary


def _record(tracker: SweepTracker, summary: dict, tags: dict, metrics: dict, pictures: list[Path],
            folders: dict[str, Path], selected: bool) -> None:
    """The parent run's record of the finish, then summary.json (atomically: it marks the finish complete)."""
    from stylediscover.legends import LABEL_LEGEND

    text = json.dumps(summary, indent=2) + "\n"
    tracker.finish_sweep(tags, metrics, markdown(summary, LABEL_LEGEND), pictures, folders,
                         "FINISHED" if selected else "FAILED", ranking_rows(summary), {SUMMARY_FILE: text})
    path = Path(summary["storage"]) / SUMMARY_FILE
    tmp = path.with_name(f".{SUMMARY_FILE}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _render_explorer(export: str, threads: int) -> None:
    import torch

    from stylediscover.explore.static import write_static_explorer

    torch.set_num_threads(threads)
    write_static_explorer(Path(export), Path(export) / "explorer.html")


def start_explorer(spec: SweepSpec, export: Path) -> ray.ObjectRef:
    """Starts rendering export/explorer.html, the static explorer of the export (one page, sliders that swap
    precomputed frames; titled with the export's folder, so rendered once the export is in place), as a Ray task with
    a trial's resources (the generator may need a GPU); the caller waits on the returned reference."""
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(_render_explorer)
    return task.remote(str(export), max(1, int(spec.resources.cpu)))


def _run_test_set(path: str, sets: int, samples: int, index: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return assess_test_set(Path(path), sets, samples, index, recorded_strengths=True)


def confirm(spec: SweepSpec, export: Path) -> dict:
    """The export's held-out test evaluation (selection.test_sets sets of selection.test_samples codes, see
    heldout.py), one Ray task with a trial's resources per set, at the strengths the export records (its
    evaluation calibrated them on these networks): the whole result goes to export/heldout.json,
    all but the response matrices into the manifest (export/directions.json, block `heldout`); returns its
    headline figures."""
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(_run_test_set)
    sets = spec.selection.test_sets
    pending = [task.remote(str(export / "directions.safetensors"), sets, spec.selection.test_samples, i,
                           max(1, int(spec.resources.cpu))) for i in range(sets)]
    kill_at("confirm")
    result = combine_test_sets(ray.get(pending))
    (export / "heldout.json").write_text(json.dumps(result, indent=1) + "\n")
    record_heldout(export / "directions.json", heldout_block(result))
    return headline(result)


def export_trial(record: TrialRecord, out: Path) -> Path:
    """Copies a trial's best evaluation (directions with manifest and .npy files, traversal grid, attention map,
    responses, metrics) from its last checkpoint to `out`."""
    shutil.copytree(record.checkpoint / "best", out, dirs_exist_ok=True)
    kill_at("export")
    return out
