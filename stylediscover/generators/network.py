"""The StyleGAN2 generator (Karras et al. 2020) with an explicit W+ API.

Shapes: z [B, z_dim] → ws [B, num_ws, w_dim] → images [B, img_channels, H, W], about [-1, 1].
Parameter and buffer names follow NVIDIA's stylegan2-ada-pytorch, so its checkpoints map onto
this network one to one. Everything runs in float32; the modulated convolutions use the
"non-fused" form (modulate activations, shared convolution, demodulate outputs), which is
mathematically identical to the per-sample grouped convolution and faster on CPUs.
"""

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

NoiseMode = Literal["const", "random", "none"]
LRELU_GAIN = math.sqrt(2.0)
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)
MAX_WIDTH = 4096  # z, w, hidden and channel widths above this are refused (FFHQ generators use 512)
MAX_CLASSES = 100_000


def power_of_two_resolution(value: int) -> int:
    """Pydantic check of an image side: a power of two in 8..1024."""
    if value < 8 or value > 1024 or value & (value - 1):
        raise ValueError(f"must be a power of two in 8..1024, got {value}")
    return value


class GeneratorConfig(BaseModel):
    """Architecture of a generator; saved beside its weights."""

    model_config = ConfigDict(extra="forbid")

    z_dim: int = Field(512, ge=1, le=MAX_WIDTH)
    w_dim: int = Field(512, ge=1, le=MAX_WIDTH)
    resolution: int = Field(256, description="output side in pixels, a power of two in 8..1024")
    img_channels: int = Field(3, ge=1, le=4)
    channels: dict[int, Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(
        description="feature channels per block resolution 4..resolution")
    c_dim: int = Field(0, ge=0, le=MAX_CLASSES, description="class-label size of a conditional generator (0: none)")
    embed_features: int | None = Field(None, ge=1, le=MAX_WIDTH, description="label embedding width; None: w_dim")
    mapping_layers: int = Field(8, ge=1, le=32)
    mapping_hidden: int | None = Field(None, ge=1, le=MAX_WIDTH, description="hidden width; None means w_dim")
    mapping_lr_multiplier: float = Field(0.01, gt=0, le=100)
    w_avg_beta: float = Field(0.995, ge=0, le=1)
    conv_clamp: float | None = Field(None, gt=0, le=1e6)
    use_noise: bool = True

    _resolution = field_validator("resolution")(power_of_two_resolution)

    @model_validator(mode="after")
    def _channels_cover_blocks(self) -> "GeneratorConfig":
        missing = [r for r in self.block_resolutions if r not in self.channels]
        if missing:
            raise ValueError(f"channels has no entry for block resolution(s) {missing}")
        return self

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """One w per convolution plus one for the last toRGB: 2·log2(resolution) − 2."""
        return 2 * int(math.log2(self.resolution)) - 2

    @classmethod
    def from_channel_base(cls, resolution: int, channel_base: int = 32768, channel_max: int = 512,
                          **kwargs) -> "GeneratorConfig":
        """NVIDIA's rule: channels(res) = min(channel_base // res, channel_max)."""
        blocks = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in blocks}
        return cls(resolution=resolution, channels=channels, **kwargs)


def resample_filter() -> torch.Tensor:
    """The normalised 4×4 binomial low-pass filter [4, 4] used for 2× upsampling (made on the CPU even where a
    network is built on the `meta` device: it is not part of the state dict)."""
    taps = torch.tensor(RESAMPLE_TAPS, device="cpu")
    f = torch.outer(taps, taps)
    return f / f.sum()


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """Pads x [B, C, H, W] by (before, after) on both axes, then convolves each channel with f."""
    channels = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(x, kernel, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling [B, C, H, W] → [B, C, 2H, 2W]: zero insertion, then the low-pass filter."""
    b, c, h, w = x.shape
    x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(b, c, 2 * h, 2 * w)
    return fir_filter(x, f, pad=(2, 1), gain=4.0)


def lrelu(x: torch.Tensor, gain: float = LRELU_GAIN, clamp: float | None = None) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) scaled by gain, optionally clamped to ±clamp."""
    x = F.leaky_relu(x, 0.2) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


class FullyConnected(nn.Module):
    """Equalised-learning-rate linear layer: [B, in] → [B, out]."""

    def __init__(self, in_features: int, out_features: int, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return lrelu(x) if self.activation else x


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """z [B, z_dim] (and one-hot class labels c [B, c_dim] when conditional) → ws [B, num_ws, w_dim], with a tracked
    average w for truncation. A conditional network embeds c (NVIDIA's `embed` layer) and concatenates it, 2nd-moment
    normalised, to z; `class_index` is the class used when no c is given."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int, hidden: int,
                 lr_multiplier: float, w_avg_beta: float, c_dim: int = 0, embed_features: int | None = None):
        super().__init__()
        self.num_ws, self.num_layers, self.w_avg_beta, self.c_dim = num_ws, num_layers, w_avg_beta, c_dim
        self.class_index: int | None = None
        embed = (embed_features or w_dim) if c_dim else 0
        if c_dim:
            self.embed = FullyConnected(c_dim, embed)
        features = [z_dim + embed] + [hidden] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            layer = FullyConnected(features[i], features[i + 1], lr_multiplier, activation=True)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def labels(self, n: int, device: torch.device) -> torch.Tensor:
        """One-hot labels [n, c_dim] of `class_index`."""
        if self.class_index is None:
            raise ValueError(f"this generator is conditional on {self.c_dim} classes: choose one")
        return F.one_hot(torch.full((n,), self.class_index, device=device), self.c_dim).float()

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False, c: torch.Tensor | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.c_dim:
            c = self.labels(len(z), z.device) if c is None else c
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(z.dtype)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = (torch.arange(self.num_ws, device=ws.device) < cutoff).view(1, -1, 1)
            ws = torch.where(truncated, self.w_avg.lerp(ws, truncation_psi), ws)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3×3 conv (optionally 2× up) → noise → bias → lrelu.

    x [B, in, R/up, R/up], w [B, w_dim] → [B, out, R, R].
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool = False, use_noise: bool = True, conv_clamp: float | None = None):
        super().__init__()
        self.up, self.use_noise, self.conv_clamp, self.resolution = up, use_noise, conv_clamp, resolution
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", resample_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        styles = self.affine(w)
        weight_sq = self.weight.square().sum(dim=[2, 3])
        dcoefs = (styles.square() @ weight_sq.t() + 1e-8).rsqrt()
        x = x * styles[:, :, None, None]
        if self.up:
            x = F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2)
            x = fir_filter(x, self.resample_filter, pad=(1, 1), gain=4.0)
        else:
            x = F.conv2d(x, self.weight, padding=1)
        # Demodulation, noise, bias and the activation gain in one pass: lrelu(g·(x·d + noise + b)) =
        # lrelu(x·(g·d) + g·(noise + b)), as leaky ReLU is positively homogeneous.
        shift = self.bias[:, None, None]
        if self.use_noise and noise_mode == "const":
            shift = shift + self.noise_const * self.noise_strength
        elif self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            shift = shift + noise * self.noise_strength
        x = F.leaky_relu(torch.addcmul(shift * LRELU_GAIN, x, dcoefs[:, :, None, None] * LRELU_GAIN), 0.2)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class ToRGB(nn.Module):
    """Modulated 1×1 conv without demodulation: [B, C, R, R] → [B, img_channels, R, R]."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = F.conv2d(x * styles[:, :, None, None], self.weight) + self.bias[:, None, None]
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisBlock(nn.Module):
    """One resolution: (const | 2× up conv0) → conv1 → toRGB, added to the upsampled image.

    Consumes num_conv + 1 ws: [B, num_conv + 1, w_dim].
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, use_noise: bool, conv_clamp: float | None):
        super().__init__()
        self.num_conv = 1 if in_channels == 0 else 2
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, True, use_noise, conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, False, use_noise, conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp)
        self.register_buffer("resample_filter", resample_filter(), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: NoiseMode) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_conv == 1:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] → images [B, img_channels, resolution, resolution]."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.block_resolutions = config.block_resolutions
        self.num_ws = config.num_ws
        for res in self.block_resolutions:
            in_channels = config.channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, config.channels[res], config.w_dim, res,
                                   config.img_channels, config.use_noise, config.conv_clamp)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1], noise_mode)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """Mapping + synthesis with the W+ API the rest of the project uses."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        hidden = config.mapping_hidden or config.w_dim
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, config.num_ws, config.mapping_layers,
                                      hidden, config.mapping_lr_multiplier, config.w_avg_beta, config.c_dim,
                                      config.embed_features)
        self.synthesis = SynthesisNetwork(config)

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def set_class(self, index: int | None) -> "Generator":
        """The class that mapping uses when given no labels (conditional generators only; None clears it)."""
        if index is not None and not 0 <= index < self.config.c_dim:
            raise ValueError(f"class {index} is not among the generator's {self.config.c_dim} classes"
                             if self.config.c_dim else "the generator is not conditional")
        self.mapping.class_index = index
        return self

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: NoiseMode = "const") -> torch.Tensor:
        """z [B, z_dim] → images [B, img_channels, H, W]."""
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)

