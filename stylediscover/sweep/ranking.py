"""A sweep's ranking with its reasons, the same wherever it is shown: the end of `sweep run` and `resume`, `sweep best`,
summary.json (`ranking`, `decision`), the MLflow parent run's description and its `ranking.json` table. Every trial in
selection order with its searched values and the figures of its selected evaluation on the validation codes, one line
saying what decided between the first two, the Pareto front defined where it is named, then the held-out figures of
the selection, the wall time and the next commands. Imports neither Ray, MLflow nor torch."""

import sys
import time
from pathlib import Path
from typing import Any

from stylediscover.sweep.selection import RULE_KEYS, TrialRecord, candidates, pareto_front, rule_key
from stylediscover.sweep.settings import SweepSettings

COLUMNS = ("rank", "trial", "searched values", "robust", "margin", "score", "n_disc", "step", "")
COLUMN_LEGEND = ("robust: attributes discovered on at least 4 of 5 (⌈0.8·V⌉ of V) validation code sets with a margin "
                 "≥ 0.15 on their codes pooled; margin: the weakest such attribute's pooled margin; score and n_disc: "
                 "on the first validation set; step: the trial's selected evaluation")


def _number(value: Any) -> float | None:
    """`value` as a number if it is one (MLflow keeps params as strings), else None; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _abbreviation(key: str) -> str:
    """'loss.diversity_weight' → 'dw', 'loss.temperature' → 'temper', 'lr' → 'lr'."""
    words = key.rsplit(".", 1)[-1].split("_")
    return "".join(w[:1] for w in words) if len(words) > 1 else words[0][:6]


def short_name(params: dict[str, Any]) -> str:
    """A trial's name by its searched values, short enough for MLflow's run list:
    {'navigator.attention': 'cumax', 'loss.diversity_weight': 0.0312345} → 'cumax dw=0.0312'."""
    parts = []
    for key, value in params.items():
        number = _number(value)
        parts.append(str(value) if number is None else f"{_abbreviation(key)}={number:.3g}")
    return " ".join(parts)


def searched_values(params: dict[str, Any]) -> str:
    """A trial's searched values, each under its last key part, in the given order (the spec's search space's):
    {'loss.form': 'infonce', 'lr': 0.0123456} → 'form=infonce, lr=0.01235'."""
    def shown(value: Any) -> str:
        number = _number(value)
        return f"{number:.4g}" if number is not None and not float(number).is_integer() else str(value)

    return ", ".join(f"{k.rsplit('.', 1)[-1]}={shown(v)}" for k, v in params.items())


def _excluded(record: TrialRecord, attention_only: bool) -> str:
    """Why a record is not ranked."""
    if record.outcome not in ("finished", "stopped_early"):
        return {"running": "unfinished", "lost": "lost by a killed driver"}.get(record.outcome, record.outcome)
    if record.checkpoint is None:
        return "no checkpoint"
    return "no attention (selection.attention_only)" if attention_only and record.attention == "none" else "?"


def _optional(value: float | None) -> float | None:
    return None if value is None or value != value else value


def rank_trials(records: list[TrialRecord], rule: str, attention_only: bool) -> list[dict]:
    """Every trial as a JSON-ready entry: the candidates in selection order (rank 1 is what `select_best` selects),
    then the others (rank None) with the reason they are not ranked, by trial id."""
    pool = candidates(records, attention_only)
    ranked = sorted(pool, key=lambda r: (tuple(-k for k in rule_key(r, rule)), r.trial_id))
    ids = {r.trial_id for r in pool}
    rest = sorted((r for r in records if r.trial_id not in ids), key=lambda r: r.trial_id)
    return [{"rank": i + 1 if r.trial_id in ids else None, "trial_id": r.trial_id, "name": short_name(r.params),
             "params": r.params, "attention": r.attention, "outcome": r.outcome, "step": r.step,
             "robust_n_discovered": r.robust_n_discovered, "weakest_margin": _optional(r.weakest_margin),
             "score": _optional(r.score), "n_discovered": r.n_discovered,
             "excluded": None if r.trial_id in ids else _excluded(r, attention_only)}
            for i, r in enumerate(ranked + rest)]


def live_summary(spec: SweepSettings, records: list[TrialRecord]) -> dict:
    """The ranking part of a summary from the trials as recorded so far (a sweep not finished yet, or finished before
    summaries held their ranking)."""
    entries = rank_trials(records, spec.selection.rule, spec.selection.attention_only)
    front = pareto_front([r for r in records if r.outcome in ("finished", "stopped_early")])
    return {"sweep": spec.name, "storage": str(spec.storage), "rule": spec.selection.rule, "ranking": entries,
            "decision": decision(entries, spec.selection.rule), "pareto_front": [r.trial_id for r in front],
            "tracking_uri": spec.tracking_uri}


def _figure(value: float | None, other: float | None = None) -> str:
    """A figure as shown; with `other`, precise enough to tell the two apart."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    digits = 3
    while other is not None and other != value and f"{value:.{digits}f}" == f"{other:.{digits}f}" and digits < 12:
        digits += 1
    return f"{value:.{digits}f}"


def _who(entry: dict) -> str:
    return f"{entry['trial_id']} ({entry['name']})" if entry["name"] else entry["trial_id"]


def decision(entries: list[dict], rule: str) -> str:
    """One line saying what decided between the first two ranked trials."""
    ranked = [e for e in entries if e["rank"] is not None]
    if not ranked:
        return "no trial could be selected: none finished with a checkpoint" + (
            "" if not entries else f" ({', '.join(sorted({e['excluded'] for e in entries}))})")
    if len(ranked) == 1:
        return f"{_who(ranked[0])} is the only trial that could be selected"
    first, second = ranked[:2]
    tied = []
    for label, attr in RULE_KEYS[rule]:
        a, b = first[attr], second[attr]
        if a != b:
            why = f"{_who(first)} ranks above {_who(second)} on {label}: {_figure(a, b)} against {_figure(b, a)}"
            return why + (f", after a tie on {', '.join(tied)}" if tied else "")
        tied.append(f"{label} {_figure(a)}")
    return f"{_who(first)} and {_who(second)} tie on {', '.join(tied)}: the smaller trial id ranks first"


def pareto_line(summary: dict) -> str:
    """The Pareto front, defined, with the selected trial's place on it."""
    keys = ", then ".join(label for label, _ in RULE_KEYS[summary["rule"]])
    front = summary["pareto_front"]
    line = ("Pareto front (trials that no other trial beats on both score and n_discovered, on the first validation "
            f"set; not what selects, which ranks by {keys}): {', '.join(front) or 'none'}")
    selected = summary.get("trial_id")
    return line + ("" if selected is None else f"; the selected {selected} is {'' if selected in front else 'not '}"
                   "on it")


def _robust(summary: dict) -> bool:
    """Whether some trial has robust figures (was evaluated on several validation sets)."""
    return any(e["robust_n_discovered"] is not None for e in summary["ranking"])


def _columns(summary: dict) -> list[str]:
    return [c for c in COLUMNS if _robust(summary) or c not in ("robust", "margin")]


def _legend(summary: dict) -> str:
    return COLUMN_LEGEND if _robust(summary) else COLUMN_LEGEND[COLUMN_LEGEND.index("score and"):]


def _rows(summary: dict) -> list[list[str]]:
    """One row of cells per trial, as _columns(summary)."""
    front = set(summary["pareto_front"])
    rows = []
    for e in summary["ranking"]:
        notes = [n for n, shown in (("selected", e["trial_id"] == summary.get("trial_id")),
                                    (f"excluded: {e['excluded']}", e["excluded"] is not None),
                                    ("Pareto front", e["trial_id"] in front)) if shown]
        cells = {"rank": "-" if e["rank"] is None else str(e["rank"]), "trial": e["trial_id"],
                 "searched values": searched_values(e["params"]), "robust": _figure(e["robust_n_discovered"]),
                 "margin": _figure(e["weakest_margin"]), "score": "-" if e["score"] is None else f"{e['score']:.4f}",
                 "n_disc": str(e["n_discovered"]), "step": str(e["step"]), "": "; ".join(notes)}
        rows.append([cells[c] for c in _columns(summary)])
    return rows


def ranking_table(summary: dict) -> list[str]:
    """The ranking as aligned text lines, header first."""
    rows = [_columns(summary)] + _rows(summary)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def ranking_rows(summary: dict) -> list[dict]:
    """The ranking as table rows (MLflow's ranking.json), one per trial, searched values as their own columns."""
    columns = [c or "note" for c in _columns(summary)]
    return [dict(zip(columns, row)) | {f"param {k}": v for k, v in e["params"].items()}
            for row, e in zip(_rows(summary), summary["ranking"])]


def heldout_line(heldout: dict) -> str:
    return (f"on held-out test codes ({heldout['sets']} sets of {heldout['samples']}): n_discovered "
            f"{heldout['n_discovered_mean']:.2f} ± {heldout['n_discovered_std']:.2f}, score "
            f"{heldout['score_mean']:.4f} ± {heldout['score_std']:.4f}; robustly discovered "
            f"{heldout['robust_n_discovered']}: {', '.join(heldout['robust']) or 'none'}")


def mlflow_ui(summary: dict) -> tuple[str | None, str]:
    """The command that serves the sweep's MLflow store (None for a tracking server) and the parent run's URL."""
    uri = summary["tracking_uri"]
    page = f"#/experiments/{summary['experiment_id']}/runs/{summary['parent_run_id']}"
    if uri.startswith(("http:", "https:")):
        return None, f"{uri.rstrip('/')}/{page}"
    mlflow = Path(sys.executable).with_name("mlflow")
    return f"{mlflow if mlflow.exists() else 'mlflow'} ui --backend-store-uri {uri}", f"http://127.0.0.1:5000/{page}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def explanation(summary: dict) -> list[str]:
    """The whole account of a sweep's choice as text lines (what `sweep run`, `resume` and `best` print)."""
    keys = ", then ".join(label for label, _ in RULE_KEYS[summary["rule"]])
    lines = [f"sweep {summary['sweep']}: {len(summary['ranking'])} trials, ranked by {summary['rule']} ({keys}; "
             "every figure on the validation codes of the trial's selected evaluation):"]
    lines += ["  " + line for line in ranking_table(summary)]
    lines += [f"  ({_legend(summary)})", f"decided: {summary['decision']}", pareto_line(summary)]
    if "trial_id" in summary:
        lines.append(f"best trial {summary['trial_id']} (the selection), its evaluation at step {summary['step']}"
                     + (f"; exported to {summary['export']} (explorer.html: sliders over every direction), "
                        f"registered as {summary['model']}" if "export" in summary else ""))
        if "heldout" in summary:
            lines.append(heldout_line(summary["heldout"]))
    elif "export" not in summary and "finished" not in summary:
        lines.append("not finished yet: the selection, its export and held-out test come when the sweep ends")
    if "failure" in summary:
        lines.append(f"failure: {summary['failure']}")
    if "wall_s" in summary:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary["started"]))
        lines.append(f"wall time: {_minutes(summary['wall_s'])} for this {summary['driver']}; "
                     f"{_minutes(summary['finished'] - summary['started'])} since the sweep started ({started})")
    lines.append("next:")
    lines.append(f"  stylediscover explore {summary['storage']}       # the selection and every trial, side by side")
    lines.append(f"  stylediscover sweep status {summary['storage']}")
    if "parent_run_id" in summary:
        command, url = mlflow_ui(summary)
        lines.append(f"  {command}   # then open {url}" if command else f"  open {url}")
    return lines


def markdown(summary: dict, label_legend: str = "") -> str:
    """The same account as markdown: the MLflow parent run's description, ending with `label_legend` (what the
    traversal grids' row labels say)."""
    keys = ", then ".join(label for label, _ in RULE_KEYS[summary["rule"]])
    head = [f"**Sweep `{summary['sweep']}`**, stored in `{summary['storage']}`: {len(summary['ranking'])} trials, "
            f"ranked by `{summary['rule']}` ({keys}; every figure on the validation codes of the trial's selected "
            "evaluation)."]
    columns = _columns(summary)
    table = ["| " + " | ".join(c or "note" for c in columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(row) + " |" for row in _rows(summary)]
    body = [_legend(summary)[0].upper() + _legend(summary)[1:] + ".", f"**Decided:** {summary['decision']}.",
            pareto_line(summary) + "."]
    if "run_id" in summary:
        body.append(f"**Selected:** [trial {summary['trial_id']}](#/experiments/{summary['experiment_id']}/runs/"
                    f"{summary['run_id']}) ({searched_values(summary['params']) or 'no searched values'}), its "
                    f"evaluation at step {summary['step']}" + (
                        "; " + heldout_line(summary["heldout"]) if "heldout" in summary else "") + ".")
    if "model" in summary:
        body.append("The export is under `export/` (open `export/explorer.html` for sliders over every direction); "
                    "`trials.png` shows the trials' traversal grids side by side, in ranking order; the export is "
                    f"registered as `{summary['model']}` (`mlflow.pyfunc.load_model` applies its directions to W+ "
                    "codes).")
    if "failure" in summary:
        body.append(f"**Failure:** {summary['failure']}")
    if label_legend:
        body.append(label_legend)
    return "\n\n".join(["\n".join(head), "\n".join(table)] + body)
