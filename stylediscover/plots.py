"""Pictures: traversal grids (directions × strengths), attention heat maps (directions × layers), sweep plots."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from stylediscover.imaging import grid, save_png  # noqa: E402

MIN_TILE = 64


@torch.no_grad()
def traversal_grid(generator, all_deltas, scale: float, strengths: int, seed: int, path: Path,
                   truncation_psi: float = 0.7) -> Path:
    """Row k: G(w + s·D_k(w)) for s in linspace(−scale, scale, strengths), one seeded code w.

    all_deltas(ws [1, L, d]) → [1, K, L, d] (a navigator's or an export's).
    """
    z = torch.randn(1, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    ws = generator.mapping(z, truncation_psi=truncation_psi)
    deltas = all_deltas(ws)[0]
    s = torch.linspace(-scale, scale, strengths)
    edited = ws + s.view(1, -1, 1, 1) * deltas.unsqueeze(1)
    images = torch.cat([generator.synthesis(row, noise_mode="const") for row in edited])
    if images.shape[-1] < MIN_TILE:
        images = F.interpolate(images, scale_factor=MIN_TILE // images.shape[-1], mode="nearest")
    return save_png(grid(images, cols=strengths), path)


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
