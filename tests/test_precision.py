"""Numeric modes of a trial (stylediscover.precision) and the feature networks' input scaling, on the CPU."""

import pytest
import torch
import torchvision
from conftest import tiny_config

from stylediscover import precision
from stylediscover.features import FeatureConfig, load_features
from stylediscover.trainer import RESUMABLE_CHANGES, Trial, train, training_loss


def test_auto_resolves_per_device():
    assert precision.resolve("auto", torch.device("cpu")) == "fp32"
    assert precision.resolve("auto", torch.device("cuda")) == precision.GPU_DEFAULT
    assert precision.resolve("tf32", torch.device("cpu")) == "tf32"


@pytest.mark.parametrize("variant", ["binary", "prototype"])
def test_bf16_autocasts_the_passes_and_keeps_the_losses_in_float32(tiny_world, variant):
    """Features come back float32 within bf16 rounding of fp32's; the step's loss and gradients are finite. (Their
    distance from fp32's, where feature differences cancel, is measured on a GPU: evaluation/results/gpu.md.)"""
    feats = {}
    for mode in ("fp32", "bf16"):
        trial = Trial(tiny_config(tiny_world, precision=mode, loss={"variant": variant}))
        torch.manual_seed(3)
        feats[mode] = trial.render_features(trial.generator.mapping(torch.randn(4, trial.generator.z_dim)))
        loss = training_loss(trial)
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in trial.parameters())
    for low, ref in zip(feats["bf16"], feats["fp32"]):
        assert low.dtype == torch.float32
        assert 1e-4 < float((low - ref).norm() / ref.norm()) < 3e-2


def test_precision_is_part_of_the_trial_but_compile_is_not(tiny_world, tmp_path):
    cfg = tiny_config(tiny_world, steps=2)
    train(cfg, tmp_path)
    with pytest.raises(Exception, match="precision"):
        train(cfg.model_copy(update={"precision": "bf16", "steps": 4}), tmp_path)
    assert "compile" in RESUMABLE_CHANGES


def test_deterministic_mode_on_cpu_changes_nothing(tiny_world, tmp_path):
    train(tiny_config(tiny_world), tmp_path / "a")
    train(tiny_config(tiny_world, deterministic=True), tmp_path / "b")
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["navigator"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["navigator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_backbone_input_scaling():
    """`none` feeds the [-1, 1] images as they are (the authors' AlexNet input); `lpips` shifts and scales them."""
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    raw = load_features(FeatureConfig(name="alexnet", weights="random", input_scaling="none"))
    torch.manual_seed(1)
    lpips = load_features(FeatureConfig(name="alexnet", weights="random"))
    scaling = {k: v for k, v in lpips.state_dict().items() if k.endswith(("shift", "scale"))}
    lpips.load_state_dict(raw.state_dict() | scaling)
    trunk = raw.net.slices[0]
    assert torch.equal(raw(images)[0], trunk(images))
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    torch.testing.assert_close(lpips(images)[0], trunk((images - shift) / scale))
    assert isinstance(trunk[0], torchvision.models.alexnet(weights=None).features[0].__class__)


def test_exact_restores_the_trial_flags():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with precision.exact():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
