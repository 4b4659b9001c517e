"""The explorer without a server: one self-contained HTML file (no network, works from file://) with, for each
direction (clean first), frames precomputed at fixed strengths and embedded as PNG data URIs, and a slider that
swaps them. Small enough to log as an MLflow artifact (16 directions × 13 strengths of 4 samples at 32 px: 1.7 MB).
"""

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from stylediscover.directions import display_order, row_label
from stylediscover.edit import render_edits
from stylediscover.explore.engine import GeneratorPool, LoadedExport
from stylediscover.explore.sources import DIRECTIONS, ExportRef
from stylediscover.imaging import grid, png_data_uri
from stylediscover.legends import LABEL_LEGEND
from stylediscover.outputs import atomic_path

TEMPLATE = Path(__file__).parent / "static" / "static.html"


def write_static_explorer(export_dir: Path, out_path: Path, seeds: Sequence[int] = (0, 1, 2, 3),
                          truncation: float = 0.7, max_multiple: float = 3.0, frames: int = 13) -> Path:
    """Writes the static explorer of an export (its folder, or its directions file) to `out_path`: per direction
    `frames` grids of the seeds' samples edited at multiples of its recommended strength evenly spaced over
    ±max_multiple. Returns `out_path`; a bad export raises InputError."""
    export_dir = Path(export_dir)
    path = export_dir / DIRECTIONS if export_dir.is_dir() else export_dir
    loaded = LoadedExport(ExportRef("export", str(export_dir), path), GeneratorPool())
    multiples = np.linspace(-max_multiple, max_multiple, frames).round(3).tolist()
    generator = loaded.generator.generator
    ws, _ = loaded.codes(tuple(seeds), float(truncation))
    rows = []
    by_index = {e["index"]: e for e in loaded.entries}
    with torch.inference_mode():
        for k in display_order(loaded.entries):
            delta = loaded.directions.edit_delta(ws, k)
            images = render_edits(generator, ws, [], [delta], multiples).split(len(seeds))
            rows.append({"label": row_label(by_index[k]), "quality": by_index[k]["quality"],
                         "frames": [png_data_uri(grid(f), compress_level=9) for f in images]})
    data = {"title": str(export_dir), "generator": loaded.generator.source, "seeds": list(seeds),
            "truncation": truncation, "multiples": multiples, "rows": rows, "legend": LABEL_LEGEND}
    page = TEMPLATE.read_text()
    page = page.replace("__TITLE__", html.escape(str(export_dir)))
    page = page.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        tmp.write_text(page)
    return out_path
