"""Known public checkpoints by name, downloaded into a cache with a progress bar and a checksum check.

Cache: `$STYLEDISCOVER_CACHE` (default `~/.cache/stylediscover`)/generators/<file name>.
Where the registry pins no sha256, the hash of the first complete download is written beside the
file (`<file>.sha256`) and every later use is checked against it (trust on first use).
"""

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from torch.hub import download_url_to_file

from stylediscover.errors import DownloadError
from stylediscover.safe_files import sha256_file

NVIDIA_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"


@dataclass(frozen=True)
class KnownCheckpoint:
    name: str
    url: str
    format: str
    resolution: int
    description: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


KNOWN_CHECKPOINTS = {c.name: c for c in (
    KnownCheckpoint("ffhq1024", f"{NVIDIA_CDN}/ffhq.pkl", "nvidia-pkl", 1024,
                    "NVIDIA stylegan2-ada-pytorch FFHQ 1024×1024 (ADA)"),
    KnownCheckpoint("ffhq512", f"{NVIDIA_CDN}/transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl",
                    "nvidia-pkl", 512,
                    "NVIDIA FFHQ 512×512 StyleGAN2 config, no augmentation (the ContraFeat paper's)"),
    KnownCheckpoint("ffhq256", f"{NVIDIA_CDN}/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
                    "nvidia-pkl", 256, "NVIDIA FFHQ 256×256 paper256 config, no augmentation"),
    KnownCheckpoint("afhqcat512", f"{NVIDIA_CDN}/afhqcat.pkl", "nvidia-pkl", 512, "NVIDIA AFHQ Cat 512×512 (ADA)"),
)}


def cache_dir() -> Path:
    return Path(os.environ.get("STYLEDISCOVER_CACHE", Path.home() / ".cache" / "stylediscover")) / "generators"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a regular file (safe_files.sha256_file: FIFOs, devices and /proc refused, size bounded)."""
    return sha256_file(path, what="checkpoint")


def _expected_hash(entry: KnownCheckpoint, target: Path) -> str | None:
    recorded = target.with_name(target.name + ".sha256")
    return entry.sha256 or (recorded.read_text().strip() if recorded.exists() else None)


def fetch(name: str, timeout_s: float = 30.0) -> Path:
    """Path of the cached checkpoint `name`, downloading it first (torch.hub: progress bar, pinned-hash check,
    written under a temporary name and moved into place) when missing."""
    if name not in KNOWN_CHECKPOINTS:
        raise DownloadError(f"unknown checkpoint name {name!r}; known: {', '.join(KNOWN_CHECKPOINTS)}")
    entry = KNOWN_CHECKPOINTS[name]
    target = cache_dir() / entry.filename
    if target.exists():
        expected = _expected_hash(entry, target)
        if expected and sha256_of(target) != expected:
            raise DownloadError(f"{target}: sha256 does not match {expected}; delete the file to download it again")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # download_url_to_file has no timeout of its own; its urlopen takes this one
    try:
        download_url_to_file(entry.url, str(target), hash_prefix=entry.sha256, progress=True)
    except RuntimeError as exc:  # the only error it raises itself: a digest that is not the pinned one
        raise DownloadError(f"{entry.url}: the download failed its checksum, expected {entry.sha256} ({exc})") from None
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {name} from {entry.url} ({reason}). This machine may be offline: "
                            "download the file elsewhere and pass its local path instead of the name "
                            f"(--generator PATH), or place it at {target}") from None
    finally:
        socket.setdefaulttimeout(previous)
    if not entry.sha256:
        target.with_name(target.name + ".sha256").write_text(sha256_of(target) + "\n")
    return target
