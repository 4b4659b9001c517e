"""Writes checkpoint fixtures in each upstream layout plus the reference outputs of their own code.

Usage: PYTHONPATH=tests/layouts python tests/layouts/build_fixtures.py OUT_DIR
Writes: nvidia_ffhq_like.pkl (protocol 3, fp16 layers, conv_clamp 256), nvidia_clamped.pkl
(protocol 4, conv_clamp 0.3 so clamping is active), nvidia_conditional.pkl (c_dim 5, references for class
CLASS), rosinality.pt (converted-weights layout),
rosinality_train.pt (training-checkpoint layout: args Namespace, no latent_avg), and for each a
`<name>.ref.pt` with z [4, z_dim], ws at ψ = 1 and 0.7 and images at ψ = 1 and 0.7 (noise 'const').
"""

import argparse
import pickle
import sys
from pathlib import Path

import nvidia_networks
import rosinality_networks
import torch
from dnnlib import EasyDict

CHANNELS = {4: 64, 8: 64, 16: 32, 32: 16}
CLASS = 2


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Random non-zero values for every tensor, so biases, noise strengths and w_avg all matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if "resample_filter" in name or "kernel" in name:
                continue
            t.add_(0.3 * torch.randn(t.shape, generator=g))


def reference(mapping, synthesis, z_dim: int, seed: int) -> dict:
    z = torch.randn(4, z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws1, ws07 = mapping(z, 1.0), mapping(z, 0.7)
        return dict(z=z, ws_psi1=ws1, ws_psi07=ws07, img_psi1=synthesis(ws1), img_psi07=synthesis(ws07))


def nvidia(out: Path, name: str, conv_clamp: float, num_fp16_res: int, protocol: int, seed: int,
           c_dim: int = 0) -> None:
    def make() -> nvidia_networks.Generator:
        torch.manual_seed(seed)
        g = nvidia_networks.Generator(
            z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=32, img_channels=3,
            mapping_kwargs=EasyDict(num_layers=4, lr_multiplier=0.01),
            synthesis_kwargs=EasyDict(channel_base=512, channel_max=64, num_fp16_res=num_fp16_res,
                                      conv_clamp=conv_clamp))
        perturb(g, seed)
        return g.eval().requires_grad_(False)

    g = make()
    snapshot = dict(G=make(), D=None, G_ema=g, augment_pipe=None,
                    training_set_kwargs=EasyDict(class_name="training.dataset.ImageFolderDataset",
                                                 path="~/datasets/shapes.zip", use_labels=False, max_size=70000,
                                                 xflip=True, resolution=32))
    with open(out / f"{name}.pkl", "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)
    c = torch.nn.functional.one_hot(torch.full((4,), CLASS), c_dim).float() if c_dim else None
    ref = reference(lambda z, psi: g.mapping(z, c, psi), g.synthesis, 32, seed)
    torch.save(ref | {"class_index": CLASS if c_dim else None}, out / f"{name}.ref.pt")


def rosinality(out: Path, seed: int) -> None:
    torch.manual_seed(seed)
    g = rosinality_networks.Generator(size=32, style_dim=32, n_mlp=4, channels=CHANNELS)
    perturb(g, seed)
    g.eval().requires_grad_(False)
    latent_avg = g.style(torch.randn(1000, 32)).mean(0)
    torch.save({"g_ema": g.state_dict(), "latent_avg": latent_avg}, out / "rosinality.pt")
    ref = reference(lambda z, psi: g.mapping(z, psi, latent_avg), g.synthesis, 32, seed)
    torch.save(ref, out / "rosinality.ref.pt")
    train_ckpt = {"g": g.state_dict(), "d": {}, "g_ema": g.state_dict(), "g_optim": {}, "d_optim": {},
                  "args": argparse.Namespace(size=32, latent=32, n_mlp=4, channel_multiplier=2)}
    torch.save(train_ckpt, out / "rosinality_train.pt")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    nvidia(out, "nvidia_ffhq_like", conv_clamp=256, num_fp16_res=4, protocol=3, seed=1)
    nvidia(out, "nvidia_clamped", conv_clamp=0.3, num_fp16_res=0, protocol=4, seed=2)
    nvidia(out, "nvidia_conditional", conv_clamp=256, num_fp16_res=2, protocol=4, seed=4, c_dim=5)
    rosinality(out, seed=3)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
