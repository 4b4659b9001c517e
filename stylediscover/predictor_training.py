"""Training attribute predictors: the shared loop, and predictors for user-labelled image sets.

Labelled sets (CSV or FFHQ-Features-Dataset, see stylediscover.labels) get one linear head per
attribute, regressed in [0, 1] over the attribute's training range; 10% of the images are held out
for R² per attribute. Backbone `resnet50` (the paper's regressor; ImageNet weights from torchvision
or a local state dict) or `small` (the embedded domain's CNN, trained from scratch).
"""

import json
import time
import urllib.error
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from tqdm import tqdm

from stylediscover.errors import InputError
from stylediscover.predictor import AttributePredictor, Head, PredictorConfig, save_predictor

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(model: AttributePredictor, images: torch.Tensor, loss_fn: LossFn, epochs: int, batch: int, lr: float,
        desc: str) -> None:
    """Adam with a one-cycle schedule over shuffled mini-batches; loss_fn(raw outputs, batch indices)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(images) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    bar = tqdm(total=steps, desc=desc, unit="step")
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(images)).split(batch):
            if len(idx) < batch:
                continue
            loss = loss_fn(model(images[idx]), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    model.eval()


def load_images(paths: list[Path], resolution: int) -> torch.Tensor:
    """Image files → [N, 3, R, R] in [-1, 1] (resized; non-square images are squashed)."""
    out = torch.empty(len(paths), 3, resolution, resolution)
    for i, path in enumerate(tqdm(paths, desc="images", unit="img")):
        try:
            image = Image.open(path).convert("RGB").resize((resolution, resolution), Image.LANCZOS)
        except OSError as exc:
            raise InputError(path, f"cannot read as an image ({exc})") from None
        out[i] = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    return out


def resnet50_trunk_weights(path: str | None) -> dict | None:
    """ImageNet ResNet-50 weights: from `path`, else torchvision's cache or download; None when unavailable."""
    if path:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise InputError(path, f"not a torchvision ResNet-50 state dict ({exc})", "--resnet-weights") from None
    try:
        return torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V1).state_dict()
    except (urllib.error.URLError, OSError, RuntimeError):
        return None


def train_labelled(paths: list[Path], targets: np.ndarray, names: list[str], out: Path, backbone: str = "auto",
                   resnet_weights: str | None = None, resolution: int | None = None, epochs: int = 10,
                   batch: int = 32, lr: float | None = None, seed: int = 0) -> dict[str, float]:
    """Trains a predictor with one linear head per attribute; writes `out` and `<out>.json`; returns held-out R²."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    weights = resnet50_trunk_weights(resnet_weights) if backbone in ("auto", "resnet50") else None
    if backbone == "resnet50" and weights is None:
        raise InputError("--backbone", "ImageNet ResNet-50 weights are not cached and could not be downloaded; "
                         "pass --resnet-weights PATH (torchvision's resnet50-11ad3fa6.pth) or --backbone small")
    if backbone == "auto":
        backbone = "resnet50" if weights is not None else "small"
        if weights is None:
            warnings.warn("no ImageNet ResNet-50 weights available offline; training the small CNN instead",
                          stacklevel=2)
    resolution = resolution or (224 if backbone == "resnet50" else 64)
    low, high = targets.min(axis=0), targets.max(axis=0)
    high = np.where(high > low, high, low + 1)
    heads = [Head(name=n, kind="linear", low=float(lo), high=float(hi)) for n, lo, hi in zip(names, low, high)]
    model = AttributePredictor(PredictorConfig(heads=heads, backbone=backbone, input_resolution=resolution))
    if weights is not None and backbone == "resnet50":
        model.trunk.load_state_dict({k: v for k, v in weights.items() if not k.startswith("fc.")})
    images = load_images(paths, resolution)
    scaled = torch.from_numpy((targets - low) / (high - low))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, len(images) // 10)
    test, train = order[:n_test], order[n_test:]
    fit(model, images[train], lambda raw, idx: F.mse_loss(raw, scaled[train][idx]), epochs, batch,
        lr or (3e-4 if backbone == "resnet50" else 2e-3), "predictor")
    with torch.no_grad():
        pred = torch.cat([model(chunk) for chunk in images[test].split(64)])
    truth = scaled[test]
    r2 = {n: float(1 - ((pred[:, i] - truth[:, i]) ** 2).sum() / ((truth[:, i] - truth[:, i].mean()) ** 2).sum()
                   .clamp(min=1e-12)) for i, n in enumerate(names)}
    save_predictor(model, out)
    report = {"backbone": backbone, "resolution": resolution, "images": len(images), "held_out": n_test,
              "epochs": epochs, "held_out_r2": r2, "wall_s": round(time.perf_counter() - start, 1)}
    Path(out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return r2
