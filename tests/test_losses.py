"""ContraFeat losses against direct, loop-based evaluations of docs/DESIGN.md §2's formulas."""

import math

import pytest
import torch

from stylediscover.losses import (
    LossConfig,
    Prototypes,
    binary_loss,
    diversity,
    focus_mask,
    pairwise_similarity,
    prototype_loss,
    similarity,
)


def loop_similarity(a: torch.Tensor, b: torch.Tensor, focus: bool = True) -> float:
    """S(Δa, Δb) for one pair [C, H, W], written out position by position."""
    c_dim, h_dim, w_dim = a.shape
    norm = lambda x, h, w: math.sqrt(sum(float(x[c, h, w]) ** 2 for c in range(c_dim)))  # noqa: E731
    def mask(x):
        n = [[norm(x, h, w) for w in range(w_dim)] for h in range(h_dim)]
        lo, hi = min(map(min, n)), max(map(max, n))
        return [[(n[h][w] - lo) / (hi - lo + 1e-6) if focus else 1.0 for w in range(w_dim)] for h in range(h_dim)]
    ma, mb = mask(a), mask(b)
    num = den = 0.0
    for h in range(h_dim):
        for w in range(w_dim):
            dot = sum(float(a[c, h, w]) * float(b[c, h, w]) for c in range(c_dim))
            cos = dot / (math.sqrt(norm(a, h, w) ** 2 + 1e-12) * math.sqrt(norm(b, h, w) ** 2 + 1e-12))
            num += (ma[h][w] * mb[h][w] * cos) ** 2
            den += ma[h][w] * mb[h][w]
    return num / (den + 1e-6)


def layers(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 4, 4, generator=g, dtype=torch.float64),
            torch.randn(n, 5, 2, 3, generator=g, dtype=torch.float64)]


@pytest.mark.parametrize("focus", [True, False])
def test_similarity_matches_loops(focus):
    a, b = layers(3, 0)[0], layers(3, 1)[0]
    got = similarity(a, b, focus)
    pair = pairwise_similarity(a, b, focus)
    for i in range(3):
        assert got[i].item() == pytest.approx(loop_similarity(a[i], b[i], focus), rel=1e-10)
        for j in range(3):
            assert pair[i, j].item() == pytest.approx(loop_similarity(a[i], b[j], focus), rel=1e-10)


def test_similarity_is_sign_invariant_and_one_for_identical_changes():
    a = layers(2, 3)[0]
    torch.testing.assert_close(similarity(a, -a), similarity(a, a))
    assert similarity(a, a, focus=False) == pytest.approx(torch.ones(2, dtype=torch.float64), abs=1e-6)


def test_focus_mask_range():
    m = focus_mask(layers(4, 5)[0])
    assert torch.allclose(m.flatten(1).min(1).values, torch.zeros(4, dtype=torch.float64))
    assert torch.allclose(m.flatten(1).max(1).values, torch.ones(4, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("focus", [True, False])
def test_binary_linear_is_the_reference_loss(focus):
    dq, dp, dn = layers(4, 10), layers(4, 11), layers(4, 12)
    k, k_neg = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    cfg = LossConfig(variant="binary", form="linear", focus_mask=focus)
    expected = sum(sum(-loop_similarity(q[i], p[i], focus) + loop_similarity(q[i], n[i], focus) for i in range(4)) / 4
                   for q, p, n in zip(dq, dp, dn))
    assert binary_loss(dq, dp, dn, k, k_neg, cfg).item() == pytest.approx(expected, rel=1e-10)


def test_prototype_linear_is_the_reference_loss():
    deltas, protos = layers(5, 20), layers(3, 21)
    k = torch.tensor([0, 2, 1, 1, 0])
    cfg = LossConfig(variant="prototype", form="linear")
    expected = 0.0
    for d, p in zip(deltas, protos):
        pos = sum(loop_similarity(d[i], p[k[i]]) for i in range(5)) / 5
        neg = [loop_similarity(d[i], p[j]) for i in range(5) for j in range(3) if j != k[i]]
        expected += -pos + sum(neg) / len(neg)
    assert prototype_loss(deltas, protos, k, cfg).item() == pytest.approx(expected, rel=1e-10)


def test_prototype_pooling_over_several_prototypes():
    deltas, protos = layers(4, 30), layers(6, 31)
    k = torch.tensor([0, 1, 2, 1])
    s = [pairwise_similarity(d, p).view(4, 3, 2) for d, p in zip(deltas, protos)]
    for pool, reduce in (("max", lambda x: x.amax(2)), ("mean", lambda x: x.mean(2))):
        cfg = LossConfig(variant="prototype", form="infonce", temperature=0.3, prototypes_per_direction=2, pool=pool)
        logits = sum(reduce(x) for x in s) / 0.3
        expected = torch.nn.functional.cross_entropy(logits, k)
        assert prototype_loss(deltas, protos, k, cfg).item() == pytest.approx(expected.item(), rel=1e-10)


def test_binary_infonce_uses_other_directions_as_negatives():
    dq, dp, dn = layers(3, 40), layers(3, 41), layers(3, 42)
    k, k_neg = torch.tensor([0, 1, 0]), torch.tensor([1, 0, 2])
    tau = 0.5
    loss = binary_loss(dq, dp, dn, k, k_neg, LossConfig(form="infonce", temperature=tau))
    total = lambda a, b, i, j: sum(loop_similarity(x[i], y[j]) for x, y in zip(a, b))  # noqa: E731
    expected = 0.0
    for i in range(3):
        pos = total(dq, dp, i, i) / tau
        negs = [total(dq, dp, i, j) / tau for j in range(3) if k[j] != k[i]]
        negs += [total(dq, dn, i, j) / tau for j in range(3) if k_neg[j] != k[i]]
        expected += -(pos - math.log(math.exp(pos) + sum(math.exp(n) for n in negs)))
    assert loss.item() == pytest.approx(expected / 3, rel=1e-9)


def test_diversity_matches_loops():
    d = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    expected = 0.0
    for b in range(2):
        v = [d[b, k].flatten() for k in range(3)]
        expected += sum((float(v[j] @ v[k]) / (v[j].norm() * v[k].norm()).item()) ** 2
                        for j in range(3) for k in range(3) if j != k)
    assert diversity(d).item() == pytest.approx(expected / 2, rel=1e-10)


def test_mirrored_prototypes_are_negated_flips():
    torch.manual_seed(0)
    protos = Prototypes(4, 2, 8, init_std=0.5)
    plain = protos()
    assert plain.shape == (8, 3, 8, 8)
    per_prototype = [protos(mirror=True, coin="prototype") for _ in range(8)]
    for mirrored in per_prototype:
        for p, m in zip(plain, mirrored):
            assert torch.equal(m, p) or torch.equal(m, -p.flip(-1))
    assert any(len({torch.equal(m, p) for p, m in zip(plain, mirrored)}) == 2 for mirrored in per_prototype)
    for _ in range(8):
        mirrored = protos(mirror=True)
        assert torch.equal(mirrored, plain) or torch.equal(mirrored, -plain.flip(-1))


def test_authors_prototype_start():
    torch.manual_seed(0)
    theta = Prototypes(30, 1, 64).theta
    assert theta.std().item() == pytest.approx(0.01, rel=0.02)
    assert LossConfig().prototype_init_std == 0.01 and LossConfig().mirror_coin == "step"
