"""StyleGAN2 residual discriminator; its block outputs double as a frozen feature network.

images [B, C, R, R] in [-1, 1] → logits [B]; `features(images)` → one map per block,
[B, channels(r/2), r/2, r/2] for r = R, R/2, ..., 8.
"""

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from stylediscover.generators.network import (
    MAX_WIDTH,
    FullyConnected,
    fir_filter,
    lrelu,
    power_of_two_resolution,
    resample_filter,
)

SQRT_HALF = math.sqrt(0.5)


class DiscriminatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: int = 32
    img_channels: int = Field(3, ge=1, le=4)
    channels: dict[int, Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(
        max_length=16, description="feature channels per block resolution 4..resolution")
    mbstd_group: int = Field(4, ge=1, le=64)

    _resolution = field_validator("resolution")(power_of_two_resolution)

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.resolution)), 2, -1)]


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass filter and 2× decimation: [B, C, H, W] → [B, C, H/2, W/2]."""
    return fir_filter(x, f, pad=(1, 1), gain=1.0)[:, :, ::2, ::2]


class Conv2d(nn.Module):
    """Equalised-learning-rate conv, optional 2× downsampling (filter first), bias and lrelu."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 activation: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.activation, self.down, self.padding = activation, down, kernel // 2
        self.register_buffer("resample_filter", resample_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        if self.down:
            x = downsample2d(x, self.resample_filter)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(x, gain=math.sqrt(2) * gain) if self.activation else x * gain


class DiscriminatorBlock(nn.Module):
    """[B, in, R, R] → [B, out, R/2, R/2] with a 1×1 downsampling skip connection."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2d(in_channels, in_channels, 3)
        self.conv1 = Conv2d(in_channels, out_channels, 3, down=True)
        self.skip = Conv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, gain=SQRT_HALF) + self.conv1(self.conv0(x), gain=SQRT_HALF)


class Discriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        top = config.resolution
        self.fromrgb = Conv2d(config.img_channels, ch[top], 1)
        for res in config.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(ch[res], ch[res // 2]))
        self.conv = Conv2d(ch[4] + 1, ch[4], 3)
        self.fc = FullyConnected(ch[4] * 16, ch[4], activation=True)
        self.out = FullyConnected(ch[4], 1)

    def features(self, images: torch.Tensor, input_map: bool = False) -> list[torch.Tensor]:
        """Block outputs, coarsest last: [[B, ch(R/2), R/2, R/2], ..., [B, ch(4), 4, 4]]; with input_map, the
        fromrgb map [B, ch(R), R, R] first."""
        x = self.fromrgb(images)
        feats = [x] if input_map else []
        for res in self.config.block_resolutions:
            x = getattr(self, f"b{res}")(x)
            feats.append(x)
        return feats

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """Appends the per-group standard deviation of features as one extra channel."""
        b, c, h, w = x.shape
        g = min(self.config.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.minibatch_std(self.features(images)[-1])
        return self.out(self.fc(self.conv(x).flatten(1))).squeeze(1)
