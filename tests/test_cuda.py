"""A trial on a real CUDA device (skipped without one; evaluation/gpu_check.sh runs these on the GPU machine):
the step matches the CPU's, deterministic resumes are bit-identical, evaluation agrees with the CPU's."""

import pytest
import torch
from conftest import tiny_config

from stylediscover.generators import load_generator
from stylediscover.metrics import MetricsConfig, attribute_responses
from stylediscover.navigator import Navigator, NavigatorConfig
from stylediscover.predictor import load_predictor
from stylediscover.trainer import Trial, train, training_loss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("variant", ["binary", "prototype"])
def test_fp32_step_on_cuda_matches_the_cpu(tiny_world, variant):
    grads = {}
    for device in ("cpu", "cuda"):
        trial = Trial(tiny_config(tiny_world, device=device, precision="fp32", loss={"variant": variant}))
        torch.manual_seed(3)
        loss = training_loss(trial)
        loss.backward()
        grads[device] = (float(loss), torch.cat([p.grad.flatten().cpu() for p in trial.parameters()]))
    assert grads["cuda"][0] == pytest.approx(grads["cpu"][0], rel=1e-4, abs=1e-5)
    torch.testing.assert_close(grads["cuda"][1], grads["cpu"][1], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_deterministic_resume_on_cuda_is_bit_identical(tiny_world, tmp_path, precision):
    cfg = tiny_config(tiny_world, device="cuda", precision=precision, deterministic=True)
    train(cfg, tmp_path / "straight")
    train(cfg.model_copy(update={"steps": 2}), tmp_path / "resumed")
    train(cfg, tmp_path / "resumed")
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["navigator"]
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["navigator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_on_cuda_matches_the_cpu(tiny_world):
    cfg = tiny_config(tiny_world)
    torch.manual_seed(0)
    responses = {}
    for device in ("cpu", "cuda"):
        g = load_generator(cfg.generator).to(device)
        torch.manual_seed(0)
        nav = Navigator(NavigatorConfig(num_directions=3, direction="free", attention="softmax"), g.num_ws,
                        g.w_dim).to(device)
        predictor = load_predictor(cfg.predictor).to(device)
        responses[device] = attribute_responses(g, nav, 3, predictor, MetricsConfig(samples=16, batch=8))
    torch.testing.assert_close(responses["cuda"], responses["cpu"], rtol=1e-3, atol=1e-4)
