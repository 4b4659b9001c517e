"""Pictures: traversal grids (directions × strengths) with a legend of their row labels, attention heat maps
(directions × layers), sweep plots and the trials' grids side by side."""

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from stylediscover.imaging import grid, save_png  # noqa: E402
from stylediscover.legends import LABEL_LEGEND  # noqa: E402

MIN_TILE = 64


@torch.no_grad()
def traversal_grid(generator, all_deltas, scales: torch.Tensor, strengths: int, seed: int, path: Path,
                   labels: list[str] | None = None, order: list[int] | None = None,
                   truncation_psi: float = 0.7) -> Path:
    """Row k: G(w + s·D_k(w)) for s in linspace(−scales[k], scales[k], strengths), one seeded code w: every
    direction at its own strength. Rows follow `order` (default: by index) and carry `labels` at their left.

    all_deltas(ws [1, L, d]) → [1, K, L, d] (a navigator's or an export's); scales [K].
    """
    z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    ws = generator.mapping(z.to(generator.device), truncation_psi=truncation_psi)
    deltas = all_deltas(ws)[0]
    order = order if order is not None else list(range(len(deltas)))
    steps = torch.linspace(-1, 1, strengths, device=ws.device)
    rows = []
    for k in order:
        edited = ws + (float(scales[k]) * steps).view(-1, 1, 1) * deltas[k]
        rows.append(generator.synthesis(edited, noise_mode="const").cpu())
    images = torch.cat(rows)
    if images.shape[-1] < MIN_TILE:
        images = F.interpolate(images, scale_factor=MIN_TILE // images.shape[-1], mode="nearest")
    picture = grid(images, cols=strengths)
    if labels is not None:
        picture = _with_legend(_label_rows(picture, [labels[k] for k in order], images.shape[-1]))
    return save_png(picture, path)


def _label_rows(picture: torch.Tensor, labels: list[str], tile: int, pad: int = 2) -> torch.Tensor:
    """The grid [C, H, W] with a white strip at its left holding one label per row of tiles (drawn by PIL)."""
    from PIL import Image, ImageDraw
    from torchvision.transforms.functional import to_tensor

    width = 8 + int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text) for text in labels))
    strip = Image.new("RGB", (width, picture.shape[1]), "white")
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(labels):
        draw.text((4, i * (tile + pad) + tile // 2 - 5), text, fill="black")
    return torch.cat([to_tensor(strip), picture], dim=2)


def _with_legend(picture: torch.Tensor) -> torch.Tensor:
    """The picture [C, H, W] above a white strip holding LABEL_LEGEND, wrapped to its width (at least 40
    characters)."""
    from PIL import Image, ImageDraw
    from torchvision.transforms.functional import to_tensor

    char = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength("x")
    lines = textwrap.wrap(LABEL_LEGEND, max(40, int((picture.shape[2] - 8) / char)))
    strip = Image.new("RGB", (max(picture.shape[2], int(8 + char * max(map(len, lines)))), 6 + 12 * len(lines)),
                      "white")
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((4, 3 + 12 * i), line, fill="black")
    legend = to_tensor(strip)
    width = legend.shape[2]
    padded = torch.ones(picture.shape[0], picture.shape[1], width)
    padded[:, :, :picture.shape[2]] = picture
    return torch.cat([padded, legend], dim=1)


def side_by_side(panels: list[tuple[str, Path]], path: Path, pad: int = 12) -> Path:
    """The pictures at the `panels`' paths in one row, each under its title (tallest sets the height); PNG."""
    from PIL import Image, ImageDraw

    pictures = [(title, Image.open(p).convert("RGB")) for title, p in panels]
    width = sum(p.width for _, p in pictures) + pad * (len(pictures) + 1)
    height = max(p.height for _, p in pictures) + 24 + 2 * pad
    canvas = Image.new("RGB", (width, height), "white")
    draw, x = ImageDraw.Draw(canvas), pad
    for title, picture in pictures:
        draw.text((x, pad), title, fill="black")
        canvas.paste(picture, (x, pad + 24))
        x += picture.width + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


@torch.no_grad()
def attention_heatmap(navigator, path: Path, labels: list[str] | None = None, ws: torch.Tensor | None = None) -> Path:
    """Heat map of α [K, L] (averaged over `ws` for input-dependent attention)."""
    att = navigator.attention(ws)
    att = att.mean(dim=0) if att.dim() == 3 else att
    k, layers = att.shape
    fig, ax = plt.subplots(figsize=(1 + 0.45 * layers, 1 + 0.35 * k))
    im = ax.imshow(att.cpu().numpy(), cmap="viridis", aspect="auto", vmin=0)
    ax.set_xlabel("W+ layer (coarse → fine)")
    ax.set_ylabel("direction")
    ax.set_xticks(range(layers))
    ax.set_yticks(range(k), labels=[f"{i}: {n}" for i, n in enumerate(labels)] if labels else range(k))
    fig.colorbar(im, ax=ax, label="attention")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sweep_plot(records, front, path: Path, selected: str | None = None) -> Path:
    """Left: score and n_discovered (and the robust count, where trials have one) per trial; right: score vs
    n_discovered with the Pareto front (each trial at its best evaluation, on the first validation set). The
    `selected` trial id is starred on both. n_discovered axes are integer, from 0."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    done = [r for r in records if r.outcome in ("finished", "stopped_early")]
    ids = [("★ " if r.trial_id == selected else "") + r.trial_id[-8:] for r in done]
    left.bar(range(len(done)), [r.score for r in done], color="tab:blue", label="score")
    left.set_xticks(range(len(done)), ids, rotation=60, fontsize=7)
    left.set_ylabel("score", color="tab:blue")
    twin = left.twinx()
    twin.plot(range(len(done)), [r.n_discovered for r in done], "o", color="tab:red", label="n_discovered")
    robust = [(i, r.robust_n_discovered) for i, r in enumerate(done) if r.robust_n_discovered is not None]
    if robust:
        twin.plot(*zip(*robust), "s", mfc="none", ms=10, color="tab:green", label="robust count")
    twin.set_ylabel("n_discovered", color="tab:red")
    twin.legend(fontsize=7, loc="lower right")
    top = max([r.n_discovered for r in done], default=1) + 0.5
    for axis in (twin, right):
        axis.set_ylim(-0.2, top)
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title("metrics per trial (best evaluation; ★ selected)")
    for kind in sorted({r.attention for r in done}):
        pts = [r for r in done if r.attention == kind]
        right.scatter([r.score for r in pts], [r.n_discovered for r in pts], label=f"attention={kind}", alpha=0.7)
    right.plot([r.score for r in front], [r.n_discovered for r in front], "k--", marker="o", mfc="none", ms=12,
               label="Pareto front: no other trial beats it on both")
    chosen = [r for r in done if r.trial_id == selected]
    if chosen:
        right.plot([chosen[0].score], [chosen[0].n_discovered], "*", color="gold", mec="black", ms=18,
                   label=f"selected {selected[-8:]} (by the selection rule, not the front)")
    right.set_xlabel("score on the first validation set (higher is better)")
    right.set_ylabel("n_discovered")
    right.legend(fontsize=7)
    right.set_title("trials and Pareto front (score × n_discovered)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
