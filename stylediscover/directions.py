"""The exported directions format: `<name>.safetensors` + `<name>.json` manifest + `<name>_npy/`.

safetensors tensors:
  deltas      [K, L, d]  per-layer edit D_k, evaluated at w_avg for input-dependent navigators
  attention   [K, L]     α_k
  directions  [K, d]     unit-RMS base direction u_k (at w_avg for adaptive directions)
  navigator.* the navigator's own weights (rebuild with the manifest's config for input-dependent use)
manifest (JSON): format, generator {source, sha256, num_ws, w_dim, resolution}, config (the whole
trial config), scale (the median edit strength the metrics used), attributes, directions [{index,
dominant_attribute, response, responses, scale (this direction's strength in the metrics, recommended
for edits), layers [first, last], runner_up, margin, quality}], quality_thresholds, metrics (on the validation
codes), and, once the export was tested on held-out codes (a sweep's selected export), heldout (heldout.py: test
seeds, n_discovered and score per set with mean ± std, per attribute its share of sets and margins, per direction
its dominant attribute per set).
Quality of a direction, from its attribute responses a_k (QUALITY_THRESHOLDS):
  inactive   its strongest response is below `inactive_below` (under 2 % of the attribute's range, or of half a
             hue turn, at the recommended strength): the edit changes no attribute the predictor reads
  clean      its strongest response is at least `clean_margin` (2×) its runner-up's: it changes one attribute
  entangled  otherwise
`<name>_npy/direction_<k>_<attribute>_layers_<first>-<last>.npy`: u_k [d] as float32, the form
GANSpace- and InterFaceGAN-style tools consume (apply it to layers first..last inclusive).
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from stylediscover.errors import InputError
from stylediscover.manifest import FORMAT, read_manifest
from stylediscover.navigator import Navigator, NavigatorConfig
from stylediscover.outputs import atomic_path
from stylediscover.safe_files import open_regular
from stylediscover.safe_tensors import Header, read_header, require_finite, require_floats

MAX_DIRECTIONS_BYTES = 1 << 30
MAX_HEADER_BYTES = 1 << 20
MAX_TENSORS = 64
LAYER_RANGE_FRACTION = 0.5
QUALITY_THRESHOLDS = {"inactive_below": 0.02, "clean_margin": 2.0}
QUALITY_ORDER = ("clean", "entangled", "inactive")


@dataclass
class Directions:
    deltas: torch.Tensor
    attention: torch.Tensor
    directions: torch.Tensor
    manifest: dict
    navigator: Navigator | None = None

    def delta(self, ws: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Deltas [B, L, d] of direction k [B] at ws [B, L, d] (input-dependent navigators use their weights)."""
        return self.navigator(ws, k) if self.navigator is not None else self.deltas[k]

    def strength(self, k: int) -> float:
        """Direction k's recommended edit strength: its own from the metrics, else the manifest's median."""
        return self.manifest["directions"][k].get("scale", self.manifest["scale"])

    def strengths(self) -> torch.Tensor:
        """Every direction's recommended strength, [K] (see strength)."""
        return torch.tensor([self.strength(k) for k in range(len(self.deltas))])

    def edit_delta(self, ws: torch.Tensor, k: int) -> torch.Tensor:
        """The delta [B, L, d] of direction k at its recommended strength, at ws [B, L, d]."""
        return self.strength(k) * self.delta(ws, torch.full((ws.shape[0],), k, dtype=torch.long, device=ws.device))

    def apply(self, ws: torch.Tensor, multiples: Mapping[int | str, float]) -> torch.Tensor:
        """ws [B, L, d] edited by every {direction (index or dominant-attribute name): multiple m of its recommended
        strength}: ws + Σ_k m_k · edit_delta(ws, k), [B, L, d]. One direction gives exactly the codes that
        `stylediscover edit` renders at strength multiple m."""
        where = self.manifest.get("path", "directions")
        resolved: dict[int, float] = {}
        for key, multiple in multiples.items():
            k = self.index(key)
            if k in resolved:
                raise InputError(where, f"direction {k} is given twice (last as {key!r})")
            if not math.isfinite(multiple):
                raise InputError(where, f"direction {key!r}: the multiple {multiple} is not a finite number")
            resolved[k] = float(multiple)
        edited = ws
        for k, multiple in resolved.items():
            edited = edited + multiple * self.edit_delta(ws, k)
        return edited

    def to(self, device: torch.device | str) -> "Directions":
        """The same directions with their tensors (and navigator) on `device`."""
        return replace(self, deltas=self.deltas.to(device), attention=self.attention.to(device),
                       directions=self.directions.to(device),
                       navigator=None if self.navigator is None else self.navigator.to(device))

    def all_deltas(self, ws: torch.Tensor) -> torch.Tensor:
        """Deltas of every direction [B, K, L, d]."""
        if self.navigator is not None:
            return self.navigator.all_deltas(ws)
        return self.deltas.unsqueeze(0).expand(ws.shape[0], *self.deltas.shape)

    def index(self, key: int | str) -> int:
        """A direction by index or by dominant-attribute name (the strongest such direction)."""
        entries = self.manifest["directions"]
        if isinstance(key, int) or str(key).isdigit():
            k = int(key)
            if not 0 <= k < len(entries):
                raise InputError(self.manifest.get("path", "directions"), f"no direction {k} (0..{len(entries) - 1})")
            return k
        matches = [e for e in entries if e["dominant_attribute"] == key]
        if not matches:
            known = sorted({e["dominant_attribute"] for e in entries})
            raise InputError(self.manifest.get("path", "directions"), f"no direction dominated by {key!r}; "
                             f"known: {known}")
        return max(matches, key=lambda e: e["response"])["index"]


def layer_range(attention: torch.Tensor) -> tuple[int, int]:
    """First and last layer whose attention is at least half the maximum, for one direction [L]."""
    idx = (attention >= LAYER_RANGE_FRACTION * attention.max()).nonzero().flatten()
    return int(idx.min()), int(idx.max())


def direction_entries(responses: torch.Tensor, attention: torch.Tensor, attributes: list[str],
                      scales: torch.Tensor) -> list[dict]:
    """One manifest entry per direction from its responses [K, A], attention [K, L] and strengths [K]."""
    entries = []
    for k, row in enumerate(responses):
        top = row.topk(min(2, len(row)))
        best, response = int(top.indices[0]), float(top.values[0])
        runner_up = float(top.values[1]) if len(row) > 1 else 0.0
        margin = response / runner_up if runner_up > 0 else None  # None: nothing else responds
        quality = ("inactive" if response < QUALITY_THRESHOLDS["inactive_below"] else
                   "clean" if margin is None or margin >= QUALITY_THRESHOLDS["clean_margin"] else "entangled")
        first, last = layer_range(attention[k])
        entries.append({"index": k, "dominant_attribute": attributes[best], "response": response,
                        "scale": float(scales[k]), "responses": [float(x) for x in row], "layers": [first, last],
                        "runner_up": attributes[int(top.indices[1])] if len(row) > 1 else None,
                        "margin": margin, "quality": quality})
    return entries


def row_label(entry: dict) -> str:
    """'3 wall_hue 0.41 x2.7 L0-5 clean': index, dominant attribute, its response, margin over the runner-up,
    layer range, quality (ASCII: PIL's built-in font has no ×)."""
    margin = "x inf" if entry["margin"] is None else f"x{entry['margin']:.1f}"
    first, last = entry["layers"]
    return f"{entry['index']} {entry['dominant_attribute']} {entry['response']:.2f} {margin} L{first}-{last} " \
           f"{entry['quality']}"


def display_order(entries: list[dict]) -> list[int]:
    """Direction indices, clean ones first (strongest first), then entangled, then inactive."""
    return [e["index"] for e in sorted(entries, key=lambda e: (QUALITY_ORDER.index(e["quality"]), -e["response"]))]


@torch.no_grad()
def export_directions(path: Path, navigator, generator, generator_info: dict, config: dict, responses: torch.Tensor,
                      attributes: list[str], metrics: dict, scales: torch.Tensor) -> dict:
    """Writes the three parts of the format for `navigator` evaluated at the generator's w_avg; returns the
    manifest."""
    w_avg = generator.mapping.w_avg.view(1, 1, -1).expand(1, generator.num_ws, -1)
    deltas = navigator.all_deltas(w_avg)[0]
    attention = navigator.attention(w_avg)
    attention = attention[0] if attention.dim() == 3 else attention
    directions = navigator.directions(w_avg)
    directions = directions[0] if directions.dim() == 3 else directions
    tensors = {"deltas": deltas, "attention": attention, "directions": directions}
    tensors |= {f"navigator.{k}": v for k, v in navigator.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(path),
              metadata={"format": FORMAT})
    npy_dir = path.with_name(path.stem + "_npy")
    npy_dir.mkdir(exist_ok=True)
    for old in npy_dir.glob("direction_*.npy"):
        old.unlink()
    entries = direction_entries(responses, attention.cpu(), attributes, scales)
    for e in entries:
        first, last = e["layers"]
        np.save(npy_dir / f"direction_{e['index']:02d}_{e['dominant_attribute']}_layers_{first}-{last}.npy",
                directions[e["index"]].cpu().numpy().astype(np.float32))
    manifest = {"format": FORMAT, "generator": generator_info, "config": config, "scale": float(scales.median()),
                "attributes": attributes, "directions": entries, "quality_thresholds": QUALITY_THRESHOLDS,
                "metrics": metrics}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def record_heldout(manifest_path: Path, block: dict) -> None:
    """Adds (or replaces) the manifest's `heldout` block (heldout.heldout_block of a held-out evaluation), replacing
    the file whole (a sweep's explorer may be reading it meanwhile)."""
    _, manifest = read_manifest(Path(manifest_path))
    manifest["heldout"] = block
    with atomic_path(Path(manifest_path)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


def _checked_shapes(path: Path, header: Header, k_dirs: int, num_ws: int, w_dim: int) -> None:
    """Refuses a directions file whose tensors are missing, of a non-float type or not [K, L, d], [K, L], [K, d]."""
    want = {"deltas": (k_dirs, num_ws, w_dim), "attention": (k_dirs, num_ws), "directions": (k_dirs, w_dim)}
    extra = [k for k in header.tensors if k not in want and not k.startswith("navigator.")]
    if extra:
        raise InputError(path, f"unexpected tensors {extra[:3]}")
    for name, shape in want.items():
        if name not in header.tensors:
            raise InputError(path, "missing from the directions file", name)
        if header.tensors[name].shape != shape:
            raise InputError(path, f"shape {list(header.tensors[name].shape)}, the manifest and generator need "
                             f"{list(shape)} (K × num_ws × w_dim = {k_dirs} × {num_ws} × {w_dim})", name)
    require_floats(header, path)


def _navigator(path: Path, config: NavigatorConfig, num_ws: int, w_dim: int, header: Header,
               state: dict[str, torch.Tensor]) -> Navigator:
    """The input-dependent navigator of an export, its architecture checked against the file's tensors on the meta
    device (which allocates nothing) before it is built."""
    with torch.device("meta"):
        basis = torch.empty(w_dim, config.pca_dim) if config.direction == "pca" else torch.empty(
            config.num_directions, w_dim)
        try:
            expected = {k: tuple(v.shape) for k, v in Navigator(config, num_ws, w_dim, basis).state_dict().items()}
        except ValueError as exc:
            raise InputError(path.with_suffix(".json"), str(exc), "config.navigator") from None
    have = {k[len("navigator."):]: info.shape for k, info in header.tensors.items() if k.startswith("navigator.")}
    if have != expected:
        wrong = sorted(k for k in expected.keys() | have.keys() if have.get(k) != expected.get(k))
        raise InputError(path, f"navigator weights do not match config.navigator: {wrong[:3]} (file "
                         f"{[have.get(k) for k in wrong[:3]]}, config {[expected.get(k) for k in wrong[:3]]})")
    navigator = Navigator(config, num_ws, w_dim, state.get("basis", state.get("u")))
    navigator.load_state_dict(state)
    return navigator.requires_grad_(False)


def load_directions(path: Path, generator=None) -> Directions:
    """Reads an export: its manifest validated (manifest.Manifest), the directions file's header checked against
    the manifest and, with `generator`, against its num_ws and w_dim, all before any tensor is read; non-finite or
    non-float tensors are refused."""
    path = Path(path)
    model, manifest = read_manifest(path.with_suffix(".json"))
    k_dirs, num_ws, w_dim = len(model.directions), model.generator.num_ws, model.generator.w_dim
    if generator is not None and (generator.num_ws, generator.w_dim) != (num_ws, w_dim):
        raise InputError(path, f"directions are for num_ws × w_dim = {num_ws} × {w_dim}, the generator has "
                         f"{generator.num_ws} × {generator.w_dim}", "deltas")
    with open_regular(path, "directions file") as (f, info):
        if info.st_size > MAX_DIRECTIONS_BYTES:
            raise InputError(path, f"{info.st_size} bytes; directions files of more than {MAX_DIRECTIONS_BYTES} "
                             "bytes are refused unread")
        try:
            header = read_header(f, info.st_size, path, MAX_HEADER_BYTES, MAX_TENSORS)
        except InputError as exc:
            raise InputError(path, f"cannot read directions ({exc.problem})", exc.field) from None
        except OSError as exc:
            raise InputError(path, f"cannot read directions ({exc.strerror or exc})") from None
        _checked_shapes(path, header, k_dirs, num_ws, w_dim)
        try:
            f.seek(0)
            tensors = {k: v.float() for k, v in safetensors.torch.load(f.read(MAX_DIRECTIONS_BYTES + 1)).items()}
        except (SafetensorError, ValueError, OSError) as exc:
            raise InputError(path, f"cannot read directions ({exc})") from None
    require_finite(tensors, path)
    manifest["path"] = str(path)
    nav_config = model.config.navigator
    navigator = None
    if nav_config.direction == "adaptive" or nav_config.attention == "adaptive":
        state = {k[len("navigator."):]: v for k, v in tensors.items() if k.startswith("navigator.")}
        navigator = _navigator(path, nav_config, num_ws, w_dim, header, state)
    return Directions(manifest=manifest, navigator=navigator,
                      **{k: tensors[k] for k in ("deltas", "attention", "directions")})
