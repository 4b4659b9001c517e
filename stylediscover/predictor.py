"""Attribute predictor P: image → attributes, a small CNN with one head per attribute.

Head kinds: `linear` (one value regressed in [0, 1] over the head's [low, high], read back in the
attribute's own units), `hue` (cos and sin of 2π·hue, read back as a hue in
turns), `categorical` (class logits, read back as probabilities). Images [B, 3, H, W] in [-1, 1]
are resized to `input_resolution` first. Backbones: `small` (a 4-layer CNN) or `resnet50` (torchvision's,
ImageNet-normalised input, as in the paper's attribute regressor). Stored as safetensors with the JSON config
in metadata.
"""

import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import torchvision
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from stylediscover.weights import load_network, save_network

FORMAT_TAG = "stylediscover.predictor"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["linear", "hue", "categorical"]
    low: float = 0.0
    high: float = 1.0
    classes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return {"linear": 1, "hue": 2, "categorical": len(self.classes)}[self.kind]


class PredictorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heads: list[Head] = Field(min_length=1)
    backbone: Literal["small", "resnet50"] = "small"
    input_resolution: int = 32
    channels: tuple[int, ...] = Field((32, 64, 128, 128), description="small backbone's conv widths")
    hidden: int = 256


class AttributePredictor(nn.Module):
    """images [B, 3, H, W] → raw head outputs [B, sum(head widths)]."""

    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.config = config
        if config.backbone == "resnet50":
            trunk = torchvision.models.resnet50(weights=None)
            trunk.fc = nn.Identity()
            self.trunk, features = trunk, 2048
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        else:
            layers, in_ch = [], 3
            for i, ch in enumerate(config.channels):
                layers += [nn.Conv2d(in_ch, ch, 3, stride=1 if i == 0 else 2, padding=1), nn.BatchNorm2d(ch),
                           nn.ReLU()]
                in_ch = ch
            side = config.input_resolution // 2 ** (len(config.channels) - 1)
            self.trunk, features = nn.Sequential(*layers), in_ch * side * side
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(features, config.hidden), nn.ReLU())
        self.out = nn.Linear(config.hidden, sum(h.width for h in config.heads))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, 3, H, W] in [-1, 1] → the heads' shared input [B, hidden] (after its ReLU)."""
        r = self.config.input_resolution
        if images.shape[-1] != r:
            images = F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        if self.config.backbone == "resnet50":
            images = ((images + 1) / 2 - self.mean) / self.std
        return self.fc(self.trunk(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(images))

    def split(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs [B, W] → per-head slices."""
        out, i = {}, 0
        for head in self.config.heads:
            out[head.name] = raw[:, i:i + head.width]
            i += head.width
        return out

    def read(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-head readings: linear [B] value, hue [B] in turns [0, 1), categorical [B, C] probabilities."""
        readings = {}
        for head, part in zip(self.config.heads, self.split(raw).values()):
            if head.kind == "linear":
                readings[head.name] = head.low + part[:, 0] * (head.high - head.low)
            elif head.kind == "hue":
                readings[head.name] = torch.atan2(part[:, 1], part[:, 0]) / (2 * math.pi) % 1.0
            else:
                readings[head.name] = part.softmax(dim=1)
        return readings


def save_predictor(model: AttributePredictor, path: Path, **metadata: str) -> None:
    save_network(model, path, FORMAT_TAG, **metadata)


def load_predictor(path: Path) -> AttributePredictor:
    return load_network(path, FORMAT_TAG, AttributePredictor, PredictorConfig)
