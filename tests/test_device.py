"""The GPU code path on a CPU-only machine: a trial's training step on PyTorch's 'meta' device, where any tensor
still made on the CPU (a random draw not moved, a constant) raises a device mismatch instead of running."""

import pytest
import torch.fx.experimental._config as fx_config
from conftest import tiny_config

from stylediscover.trainer import Trial, training_loss


@pytest.mark.parametrize("changes", [
    {"loss": {"variant": "binary", "form": "infonce"}},
    {"loss": {"variant": "binary", "form": "linear"}, "navigator": {"num_directions": 3, "direction": "pca",
                                                                     "pca_dim": 4, "attention": "cumax"}},
    {"loss": {"variant": "prototype", "prototypes_per_direction": 2, "mirror_prototypes": True}},
])
def test_training_step_keeps_every_tensor_on_the_trial_device(tiny_world, changes):
    trial = Trial(tiny_config(tiny_world, **changes))
    for name in ("generator", "predictor", "features", "navigator", "prototypes"):
        if getattr(trial, name) is not None:
            setattr(trial, name, getattr(trial, name).to("meta"))
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):  # the losses' boolean masks
        loss = training_loss(trial)
        loss.backward()
    assert loss.device.type == "meta"
    assert {p.grad.device.type for p in trial.parameters()} == {"meta"}
