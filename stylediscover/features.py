"""Frozen feature networks F: images [B, 3, H, W] in [-1, 1] → feature maps [[B, C_l, H_l, W_l], ...].

Names (`FeatureConfig.name`):
  discriminator  the block outputs of a StyleGAN2 discriminator (`weights`: a native discriminator
                 file, or `builtin:<domain>` — an embedded domain's; the offline default network);
                 `input_map: true` prepends its full-resolution fromrgb map
  alexnet        AlexNet relu1..relu5, LPIPS-style slices, ImageNet weights from torchvision
  vgg16          VGG16 relu1_2..relu5_3, LPIPS-style slices
  lpips-alex     calibrated LPIPS: AlexNet slices, channel-unit-normalised and scaled by the square
  lpips-vgg      root of the `lpips` package's learned per-channel weights, so that
                 LPIPS(x, y) = Σ_l mean_hw ‖F_l(x) − F_l(y)‖²
For the torchvision backbones `weights` is None (torchvision's ImageNet weights, downloaded into the
torch hub cache when a network exists), a local `.pth` state-dict path, or `random` (timing only), and
`input_scaling` says what they are fed: `lpips` (the LPIPS package's shift and scale of [-1, 1] images) or
`none` (the images in [-1, 1] as they are, as the ContraFeat authors feed AlexNet, at the generator's
resolution when `input_resolution` is None).
"""

import urllib.error
from pathlib import Path
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
import torchvision
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from stylediscover.errors import InputError

BACKBONES = {
    "alexnet": (torchvision.models.alexnet, "AlexNet_Weights", [2, 5, 8, 10, 12]),
    "vgg16": (torchvision.models.vgg16, "VGG16_Weights", [4, 9, 16, 23, 30]),
}
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class FeatureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["discriminator", "alexnet", "vgg16", "lpips-alex", "lpips-vgg"] = "discriminator"
    weights: str | None = Field(None, description="discriminator: file or builtin:<domain> (None: the default "
                                "domain's); "
                                "backbones: state-dict path, 'random', or None for torchvision's ImageNet weights")
    input_resolution: int | None = Field(None, ge=8, le=2048)
    layers: list[Annotated[int, Field(ge=0, le=64)]] | None = Field(None, max_length=32)
    input_map: bool = Field(False, description="discriminator: also its full-resolution fromrgb map, first (where "
                            "small objects are largest)")
    input_scaling: Literal["lpips", "none"] = Field("lpips", description="backbones: LPIPS's shift and scale of the "
                                                    "[-1, 1] images, or none (the authors' raw input)")


class DiscriminatorFeatures(nn.Module):
    def __init__(self, discriminator: nn.Module, input_map: bool):
        super().__init__()
        self.discriminator, self.input_map = discriminator, input_map

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.discriminator.features(images, self.input_map)


class SliceFeatures(nn.Module):
    """A torchvision backbone cut into slices; optionally LPIPS-calibrated (unit-normalised, weighted)."""

    def __init__(self, trunk: nn.Sequential, cuts: list[int], channel_weights: list[torch.Tensor] | None = None,
                 lpips_scaling: bool = True):
        super().__init__()
        starts = [0] + cuts[:-1]
        self.slices = nn.ModuleList(nn.Sequential(*trunk[a:b]) for a, b in zip(starts, cuts))
        shift, scale = (LPIPS_SHIFT, LPIPS_SCALE) if lpips_scaling else ((0.0,) * 3, (1.0,) * 3)
        self.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1))
        self.channel_weights = nn.ParameterList(
            nn.Parameter(w.view(1, -1, 1, 1).sqrt(), requires_grad=False) for w in channel_weights or [])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift) / self.scale
        feats = []
        for i, block in enumerate(self.slices):
            x = block(x)
            if self.channel_weights:
                feats.append(x / torch.sqrt(x.square().sum(dim=1, keepdim=True) + 1e-10) * self.channel_weights[i])
            else:
                feats.append(x)
        return feats


class FeatureNetwork(nn.Module):
    """Resizing (optional), the network, then layer selection (optional); frozen, eval mode."""

    def __init__(self, net: nn.Module, input_resolution: int | None, layers: list[int] | None):
        super().__init__()
        self.net, self.input_resolution, self.layers = net, input_resolution, layers
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        r = self.input_resolution
        if r and images.shape[-1] != r:
            images = F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        feats = self.net(images)
        return [feats[i] for i in self.layers] if self.layers else feats


def _backbone(name: str, weights: str | None, source: str) -> nn.Sequential:
    build, weights_enum, _ = BACKBONES[name]
    if weights == "random":
        return build(weights=None).features
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InputError(source, f"no such weights file: {path}", "features.weights")
        model = build(weights=None)
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, ValueError, OSError) as exc:
            raise InputError(path, f"not a torchvision {name} state dict ({str(exc).splitlines()[0]})",
                             "features.weights") from None
        return model.features
    enum = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
    try:
        return build(weights=enum).features
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise InputError(source, f"ImageNet weights for {name} are not cached and could not be downloaded from "
                         f"{enum.url} ({exc}). Download that file elsewhere and set features.weights to its path, "
                         "or use features.name=discriminator (offline)", "features.weights") from None


def lpips_channel_weights(net: str) -> list[torch.Tensor]:
    """The `lpips` package's calibrated per-channel weights (shipped inside the package) for alex or vgg."""
    import lpips

    path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"].flatten() for i in range(len(state))]


def load_features(cfg: FeatureConfig, source: str = "config") -> FeatureNetwork:
    """The frozen feature network described by cfg; errors name `source` and the field."""
    if cfg.name == "discriminator":
        from stylediscover.builtin import DEFAULT, resolve_builtin
        from stylediscover.generators.native import load_discriminator

        net = DiscriminatorFeatures(load_discriminator(resolve_builtin(cfg.weights or DEFAULT,
                                                                       "discriminator")), cfg.input_map)
    elif cfg.name in BACKBONES:
        net = SliceFeatures(_backbone(cfg.name, cfg.weights, source), BACKBONES[cfg.name][2],
                            lpips_scaling=cfg.input_scaling == "lpips")
    else:
        backbone = {"lpips-alex": "alexnet", "lpips-vgg": "vgg16"}[cfg.name]
        net = SliceFeatures(_backbone(backbone, cfg.weights, source), BACKBONES[backbone][2],
                            lpips_channel_weights("alex" if backbone == "alexnet" else "vgg"),
                            lpips_scaling=cfg.input_scaling == "lpips")
    return FeatureNetwork(net, cfg.input_resolution, cfg.layers)
