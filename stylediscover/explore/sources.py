"""What the explorer can show: the exports behind a PATH, found from files only (nothing imported from Ray or
MLflow, nothing written).

PATH is an export folder (holding `directions.safetensors`), a directions file, a sweep folder (holding
`spec.json`) or the name of a sweep under the storage path. A sweep offers its selected export (`best/`) and
each trial's best evaluation, kept in the `best/` folder of the trial's last Tune checkpoint
(`run_trial_<id>_.../checkpoint_<n>/best/`, as `sweep.runner.trial_records` finds it).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stylediscover.errors import InputError
from stylediscover.safe_files import read_bytes

DIRECTIONS = "directions.safetensors"
MAX_NOTE_BYTES = 1 << 20  # metrics.json and summary.json, read for labels only (regular files, as safe_files reads)
TRIAL_ID = re.compile(r"run_trial_([0-9a-f]+_\d+)")


@dataclass(frozen=True)
class ExportRef:
    """One export the page can show: `id` (stable within a server), a human label and its directions file."""

    id: str
    label: str
    path: Path


def _metrics_note(folder: Path) -> str:
    """'robustly 6, weakest margin 0.42; 6 found, score 0.596' from an export's metrics.json (the robust figures
    when it has them), or '' when it has none."""
    try:
        metrics = json.loads(read_bytes(folder / "metrics.json", MAX_NOTE_BYTES))
        note = f"{int(metrics['n_discovered'])} found, score {float(metrics['score']):.3f}"
        if metrics.get("robust_n_discovered") is not None:
            note = (f"robustly {int(metrics['robust_n_discovered'])}, weakest margin "
                    f"{float(metrics['weakest_margin']):.2f}; {note}")
        return note
    except (InputError, ValueError, KeyError, TypeError, RecursionError):
        return ""


def _labelled(prefix: str, folder: Path) -> str:
    note = _metrics_note(folder)
    return f"{prefix} ({note})" if note else prefix


def sweep_exports(folder: Path) -> list[ExportRef]:
    """The sweep's selected export first (when it has one), then each trial's best evaluation by trial id."""
    selected = ""
    try:
        selected = str(json.loads(read_bytes(folder / "summary.json", MAX_NOTE_BYTES)).get("trial_id", ""))[:100]
    except (InputError, ValueError, AttributeError, RecursionError):
        pass
    refs = []
    if (folder / "best" / DIRECTIONS).is_file():
        refs.append(ExportRef("selected", _labelled(f"selected: {selected or 'best'}", folder / "best"),
                              folder / "best" / DIRECTIONS))
    for trial_dir in sorted(p for p in folder.glob("run_trial_*") if p.is_dir()):
        exports = sorted(trial_dir.glob(f"checkpoint_*/best/{DIRECTIONS}"))
        if not exports:
            continue
        match = TRIAL_ID.match(trial_dir.name)
        trial_id = match.group(1) if match else trial_dir.name
        refs.append(ExportRef(f"trial-{trial_id}", _labelled(f"trial {trial_id}", exports[-1].parent), exports[-1]))
    return refs


def resolve_exports(path: str, storage_path: str | Path) -> list[ExportRef]:
    """The exports behind PATH (see the module's docstring); an unusable PATH raises InputError naming it."""
    candidate = Path(path)
    if candidate.is_file():
        if candidate.suffix != ".safetensors":
            raise InputError(path, "not a directions file (expected a .safetensors export, an export folder or a "
                             "sweep)")
        return [ExportRef("export", _labelled(str(candidate), candidate.parent), candidate)]
    if candidate.is_dir():
        if (candidate / DIRECTIONS).is_file():
            return [ExportRef("export", _labelled(str(candidate), candidate), candidate / DIRECTIONS)]
        if (candidate / "spec.json").is_file():
            return _nonempty(sweep_exports(candidate), path)
        raise InputError(path, f"neither an export folder (no {DIRECTIONS}) nor a sweep folder (no spec.json)")
    sweep = Path(storage_path) / path
    if "/" not in path and (sweep / "spec.json").is_file():
        return _nonempty(sweep_exports(sweep), path)
    raise InputError(path, f"no such file or folder, and no sweep of that name under {storage_path}")


def _nonempty(refs: list[ExportRef], path: str) -> list[ExportRef]:
    if not refs:
        raise InputError(path, "the sweep has no exported directions yet (no best/ folder and no trial checkpoint "
                         "with one)")
    return refs


def served_root(path: str, storage_path: str | Path) -> Path:
    """The folder the command line's PATH opens to the page: a directions file's folder, an export or sweep folder
    itself, or a named sweep's folder under the storage path."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate.resolve().parent
    return (candidate if candidate.is_dir() else Path(storage_path) / path).resolve()


def confined_exports(path: str, storage_path: str | Path, roots: list[Path]) -> list[ExportRef]:
    """resolve_exports for a PATH sent by the page, opened only under `roots` (symlinks followed). Any path it will
    not open (outside the roots, missing, neither an export nor a sweep) gets the same message, so the answer tells
    nothing about what exists on the machine."""
    refusal = InputError(path[:200], "not an export this explorer opens (export folders, directions files and "
                         f"sweeps under {', '.join(map(str, roots))} only)")
    candidates = [Path(path)] + ([Path(storage_path) / path] if "/" not in path else [])
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            inside = any(resolved.is_relative_to(root) for root in roots)
            if inside and resolved.exists():
                return resolve_exports(str(resolved), storage_path)
        except (OSError, RuntimeError, ValueError, InputError):
            continue
    raise refusal
