"""The navigator M(w+) → D ∈ R^{K×L×d}: K directions, each a unit-RMS vector u_k ∈ R^d spread over the
L layers of W+ by an attention α_k ∈ R^L, D_k[l] = α_k[l] · u_k.

Direction parameterisations (`direction`):
  free      u_k a free parameter (init N(0, 1))
  pca       u_k = V c_k with V [d, n] the top-n PCA basis of W (a buffer), c_k ∈ R^n learned
  adaptive  u_k = MLP_k(mean_l w+[l]) (input-dependent)
  fixed     u_k given (a buffer; GANSpace / SeFa baselines with learned attention on top)
Layer attentions (`attention`):
  none       uniform 1/L (no layer selection), or uniform over direction k's own layer band [start_k, stop_k)
             (`layer_bands`: the per-edit layer ranges GANSpace and SeFa users pick)
  softmax    softmax(a_k), a_k ~ N(0, 1)
  softmax_t  softmax(a_k / T) with attention temperature T
  cumax      cumsum(softmax(a1_k)) · (1 − cumsum(softmax(a2_k))): a contiguous band of layers
  adaptive   logits from an MLP on mean_l w+[l]
Every learned attention is optionally smoothed along the layer axis by a normalised 1-D Gaussian (smooth_kernel,
smooth_sigma), in one of two places (`smoothing`):
  output   the authors' form: the attention rows themselves, reflect padding, no renormalisation (with kernel
           3, σ 1 a row sums to 0.73-1.27 and no layer exceeds 0.55)
  logits   the logits before the softmax, replicate padding (rows sum to 1 and can be one-hot)
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from stylediscover.numbers import FiniteFloat

DirectionKind = Literal["free", "pca", "adaptive", "fixed"]
AttentionKind = Literal["none", "softmax", "softmax_t", "cumax", "adaptive"]


class NavigatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_directions: int = Field(30, ge=2, le=1024, description="K")
    direction: DirectionKind = "pca"
    pca_dim: int = Field(100, ge=1, le=4096, description="n, the PCA basis size for direction='pca'")
    attention: AttentionKind = "softmax"
    smooth_kernel: int = Field(3, ge=0, le=63, description="Gaussian smoothing width along layers (0 or 1: none)")
    smooth_sigma: FiniteFloat = Field(1.0, gt=0, le=1e3)
    smoothing: Literal["output", "logits"] = Field("output", description="smooth the attention rows (the authors') "
                                                   "or the logits before the softmax")
    attention_temperature: FiniteFloat = Field(1.0, gt=0, le=1e4, description="T for attention='softmax_t'")
    hidden: int = Field(128, ge=1, le=4096, description="hidden width of the adaptive MLPs")
    layer_bands: list[tuple[int, int]] | None = Field(
        None, max_length=1024,
        description="attention='none' only: [start, stop) of W+ layers per direction (default: all layers)")

    @model_validator(mode="after")
    def _check(self) -> "NavigatorConfig":
        if self.smooth_kernel > 1 and self.smooth_kernel % 2 == 0:
            raise ValueError(f"smooth_kernel must be odd, got {self.smooth_kernel}")
        if self.layer_bands is not None:
            if self.attention != "none":
                raise ValueError("layer_bands fixes the attention: it needs attention 'none'")
            if len(self.layer_bands) != self.num_directions:
                raise ValueError(f"layer_bands has {len(self.layer_bands)} bands for {self.num_directions} directions")
            bad = [band for band in self.layer_bands if not 0 <= band[0] < band[1]]
            if bad:
                raise ValueError(f"layer_bands {bad[0]} is not [start, stop) with 0 <= start < stop")
        return self


def unit_rms(x: torch.Tensor) -> torch.Tensor:
    """Rescales the last axis to unit root-mean-square: x / sqrt(mean(x²) + 1e-8)."""
    return x / torch.sqrt(x.square().mean(dim=-1, keepdim=True) + 1e-8)


def gaussian_kernel(width: int, sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian [width]."""
    x = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    k = torch.exp(-x.square() / (2 * sigma**2))
    return k / k.sum()


def band_attention(bands: list[tuple[int, int]], num_ws: int) -> torch.Tensor:
    """Fixed attention [K, L]: row k uniform over layers [start_k, stop_k), zero elsewhere; each row sums to 1."""
    if any(stop > num_ws for _, stop in bands):
        raise ValueError(f"layer_bands reach past the generator's {num_ws} W+ layers: {bands}")
    rows = torch.zeros(len(bands), num_ws)
    for k, (start, stop) in enumerate(bands):
        rows[k, start:stop] = 1.0 / (stop - start)
    return rows


class BatchedMLP(nn.Module):
    """K independent two-layer MLPs applied at once: [B, in] → [B, K, out]."""

    def __init__(self, k: int, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(k, d_in, hidden) / math.sqrt(d_in))
        self.b1 = nn.Parameter(torch.zeros(k, hidden))
        self.w2 = nn.Parameter(torch.randn(k, hidden, d_out) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(k, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(torch.einsum("bi,kih->bkh", x, self.w1) + self.b1, 0.2)
        return torch.einsum("bkh,kho->bko", h, self.w2) + self.b2


class Navigator(nn.Module):
    """ws [B, L, d] → per-layer deltas. Input-independent parts are computed once and broadcast."""

    def __init__(self, config: NavigatorConfig, num_ws: int, w_dim: int, basis: torch.Tensor | None = None):
        super().__init__()
        self.config, self.num_ws, self.w_dim = config, num_ws, w_dim
        k = config.num_directions
        if config.direction == "free":
            self.u = nn.Parameter(torch.randn(k, w_dim))
        elif config.direction == "pca":
            if basis is None or basis.shape != (w_dim, config.pca_dim):
                raise ValueError(f"direction='pca' needs a PCA basis of shape [{w_dim}, {config.pca_dim}]")
            self.register_buffer("basis", basis.float())
            self.coef = nn.Parameter(torch.randn(k, config.pca_dim))
        elif config.direction == "fixed":
            if basis is None or basis.shape != (k, w_dim):
                raise ValueError(f"direction='fixed' needs directions of shape [{k}, {w_dim}]")
            self.register_buffer("u", basis.float())
        else:
            self.direction_mlp = BatchedMLP(k, w_dim, config.hidden, w_dim)
        if config.attention == "none":
            self.register_buffer("uniform", band_attention(config.layer_bands or [(0, num_ws)] * k, num_ws),
                                 persistent=False)
        elif config.attention in ("softmax", "softmax_t"):
            self.logits = nn.Parameter(torch.randn(k, num_ws))
        elif config.attention == "cumax":
            self.logits_start = nn.Parameter(torch.randn(k, num_ws))
            self.logits_end = nn.Parameter(torch.randn(k, num_ws))
        elif config.attention == "adaptive":
            self.attention_mlp = BatchedMLP(k, w_dim, config.hidden, num_ws)
        if config.smooth_kernel > 1:
            self.register_buffer("smoothing", gaussian_kernel(config.smooth_kernel, config.smooth_sigma))

    def directions(self, ws: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-RMS directions: [K, d], or [B, K, d] when adaptive."""
        kind = self.config.direction
        if kind in ("free", "fixed"):
            return unit_rms(self.u)
        if kind == "pca":
            return unit_rms(self.coef @ self.basis.t())
        return unit_rms(self.direction_mlp(ws.mean(dim=1)))

    def _smooth(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        """Gaussian smoothing of x [..., L] along the layer axis with `mode` padding (identity without a kernel)."""
        if self.config.smooth_kernel <= 1:
            return x
        shape, pad = x.shape, self.config.smooth_kernel // 2
        x = F.pad(x.reshape(-1, 1, shape[-1]), (pad, pad), mode=mode)
        return F.conv1d(x, self.smoothing.view(1, 1, -1)).reshape(shape)

    def attention(self, ws: torch.Tensor | None = None) -> torch.Tensor:
        """Attention over layers: [K, L], or [B, K, L] when adaptive; see the module docstring for the smoothing."""
        kind = self.config.attention
        if kind == "none":
            return self.uniform
        on_logits = self.config.smoothing == "logits"

        def logits(x: torch.Tensor) -> torch.Tensor:
            return self._smooth(x, "replicate") if on_logits else x

        if kind == "softmax":
            rows = logits(self.logits).softmax(dim=-1)
        elif kind == "softmax_t":
            rows = (logits(self.logits) / self.config.attention_temperature).softmax(dim=-1)
        elif kind == "cumax":
            start = torch.cumsum(logits(self.logits_start).softmax(dim=-1), dim=-1)
            end = torch.cumsum(logits(self.logits_end).softmax(dim=-1), dim=-1)
            rows = start * (1 - end).clamp(min=0)
        else:
            rows = logits(self.attention_mlp(ws.mean(dim=1))).softmax(dim=-1)
        return rows if on_logits else self._smooth(rows, "reflect")

    def forward(self, ws: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Deltas D_{k_b}(ws_b) [B, L, d] for one direction index k [B] per sample."""
        u, a = self.directions(ws), self.attention(ws)
        rows = torch.arange(len(k), device=k.device)
        u = u[rows, k] if u.dim() == 3 else u[k]
        a = a[rows, k] if a.dim() == 3 else a[k]
        return a.unsqueeze(-1) * u.unsqueeze(1)

    def all_deltas(self, ws: torch.Tensor) -> torch.Tensor:
        """Deltas of every direction [B, K, L, d]."""
        u, a = self.directions(ws), self.attention(ws)
        b = ws.shape[0]
        u = u.expand(b, *u.shape[-2:]) if u.dim() == 2 else u
        a = a.expand(b, *a.shape[-2:]) if a.dim() == 2 else a
        return a.unsqueeze(-1) * u.unsqueeze(2)
