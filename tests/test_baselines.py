"""The closed-form baselines against hand-computed cases."""

import numpy as np
import torch

from stylediscover.baselines import sefa_directions
from stylediscover.generators import Generator, GeneratorConfig


def test_sefa_follows_the_authors_get_sefa():
    """genforce/ContraFeat form: transpose each affine weight to [d, channels], stack the convolutions' and the last
    ToRGB's, normalise every channel's column, take the top eigenvectors of W Wᵀ (numpy, float64)."""
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=16, channels={4: 6, 8: 5, 16: 4}, mapping_layers=1))
    with torch.no_grad():
        for p in g.parameters():
            p.add_(torch.randn_like(p))
    blocks = [g.synthesis.b4, g.synthesis.b8, g.synthesis.b16]
    convs = [blocks[0].conv1] + [layer for b in blocks[1:] for layer in (b.conv0, b.conv1)]
    w = np.concatenate([c.affine.weight.detach().numpy().T for c in convs]
                       + [blocks[-1].torgb.affine.weight.detach().numpy().T], 1)
    w = w.astype(np.float64) / np.linalg.norm(w, axis=0, keepdims=True)
    values, vectors = np.linalg.eigh(w @ w.T)
    expected = vectors[:, np.argsort(-values)[:3]].T
    got = sefa_directions(g, 3).double().numpy()
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs((got * expected).sum(axis=1)), 1.0, atol=1e-6)
