"""The quality report's statistics: Fréchet distance and per-factor checks, on hand-made data."""

import torch

from stylediscover.domains import get_domain
from stylediscover.gan_quality import factor_checks, frechet_distance


def test_frechet_distance_of_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(20_000, 3, generator=g, dtype=torch.float64)
    assert frechet_distance(a, b) < 0.01
    shift = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    assert abs(frechet_distance(a + shift, b) - 5.0) < 0.05  # |Δμ|² = 1 + 4
    assert abs(frechet_distance(3 * a, b) - 3 * (3 - 1) ** 2) < 0.1  # Σ (σa − σb)² over 3 axes


def test_factor_checks_catch_a_collapsed_factor_and_a_skewed_class():
    faces = get_domain("faces")
    values = faces.sample(4000, torch.Generator().manual_seed(1))

    def readings(v: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for i, f in enumerate(faces.factors):
            if f.kind == "categorical":
                out[f.name] = torch.nn.functional.one_hot(v[:, i].long(), len(f.classes)).float()
            else:
                out[f.name] = v[:, i]
        return out

    assert all(row["ok"] for row in factor_checks(faces, readings(values), readings(values)))
    broken = values.clone()
    broken[:, faces.factor_names.index("smile")] *= 0.5          # spread halved
    broken[:, faces.factor_names.index("glasses")] = 0           # always "none"
    failed = {row["check"] for row in factor_checks(faces, readings(broken), readings(values)) if not row["ok"]}
    assert failed == {"smile std", "glasses frequency none", "glasses frequency round", "glasses frequency square"}
