"""Closed-form direction baselines in W: GANSpace (PCA of mapped codes) and SeFa (style-affine eigenvectors).

Both return unit-RMS directions [K, d], the same normalisation the navigator uses, so that a
baseline can be evaluated directly (all layers, or a fixed layer range) or given a learned
attention on top (navigator direction='fixed').
"""

import torch

from stylediscover.generators.network import Generator, SynthesisLayer
from stylediscover.navigator import unit_rms


@torch.no_grad()
def w_pca(generator: Generator, samples: int = 100_000, seed: int = 0,
          batch: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of w = mapping(z): (components [d, d] as columns, by decreasing variance; variances [d]), on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    ws = torch.cat([generator.mapping(torch.randn(min(batch, samples - i), generator.z_dim, generator=gen)
                                      .to(generator.device))[:, 0].cpu() for i in range(0, samples, batch)])
    ws = ws.double() - ws.double().mean(dim=0)
    variances, vectors = torch.linalg.eigh(ws.t() @ ws / (len(ws) - 1))
    order = variances.argsort(descending=True)
    return vectors[:, order].float(), variances[order].float()


def ganspace_directions(generator: Generator, k: int, samples: int = 100_000, seed: int = 0) -> torch.Tensor:
    """Top-k principal directions of W, [k, d]."""
    components, _ = w_pca(generator, samples, seed)
    return unit_rms(components[:, :k].t())


@torch.no_grad()
def sefa_directions(generator: Generator, k: int) -> torch.Tensor:
    """Top-k eigenvectors of AᵀA, [k, d], as the ContraFeat authors' `get_sefa` computes them: A stacks the
    style-affine weights [channels, d] of every synthesis convolution and of the last ToRGB, each row (one channel's
    affine) normalised to unit length. On the CPU."""
    layers = [m for m in generator.synthesis.modules() if isinstance(m, SynthesisLayer)]
    last_torgb = getattr(generator.synthesis, f"b{generator.resolution}").torgb
    a = torch.cat([m.affine.weight for m in layers] + [last_torgb.affine.weight]).double().cpu()
    a = a / a.norm(dim=1, keepdim=True)
    values, vectors = torch.linalg.eigh(a.t() @ a)
    return unit_rms(vectors[:, values.argsort(descending=True)[:k]].t().float())
