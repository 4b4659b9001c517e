"""Recognises a checkpoint file's format from its first bytes and loads it into Generator."""

import struct
from enum import Enum
from pathlib import Path

from stylediscover.errors import InputError, summary
from stylediscover.generators.native import load_native
from stylediscover.generators.network import Generator
from stylediscover.generators.nvidia_pickle import load_nvidia_pickle
from stylediscover.generators.rosinality import load_rosinality
from stylediscover.safe_files import open_regular


class CheckpointFormat(str, Enum):
    NVIDIA_PKL = "nvidia-pkl"
    ROSINALITY_PT = "rosinality-pt"
    NATIVE = "native"


ZIP_MAGIC = b"PK\x03\x04"
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def detect_format(path: Path) -> CheckpointFormat:
    """nvidia-pkl: a bare pickle; rosinality-pt: a torch.save file; native: safetensors."""
    path = Path(path)
    with open_regular(path, "checkpoint file") as (f, info):
        try:
            head = f.read(16)
        except OSError as exc:
            raise InputError(path, f"cannot read the checkpoint file ({exc.strerror or exc})") from None
    if len(head) < 9:
        raise InputError(path, f"file is empty or truncated ({info.st_size} bytes)")
    if head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_MAGIC):
        return CheckpointFormat.ROSINALITY_PT
    if head[0] == 0x80:
        return CheckpointFormat.NVIDIA_PKL
    header_len = struct.unpack("<Q", head[:8])[0]
    if head[8:9] == b"{" and header_len < info.st_size:
        return CheckpointFormat.NATIVE
    raise InputError(path, "not a recognised generator checkpoint (expected a stylegan2-ada-pytorch .pkl, "
                     "a rosinality .pt or a stylediscover .safetensors file)")


LOADERS = {
    CheckpointFormat.NVIDIA_PKL: load_nvidia_pickle,
    CheckpointFormat.ROSINALITY_PT: load_rosinality,
    CheckpointFormat.NATIVE: load_native,
}


MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, OverflowError, MemoryError,
             RecursionError, EOFError, struct.error)


def load_checkpoint(path: Path) -> Generator:
    """Any supported checkpoint file → Generator in eval mode, float32, on the CPU. A malformed file that no
    specific check names still ends in one InputError, never a traceback."""
    fmt = detect_format(path)
    try:
        return LOADERS[fmt](Path(path))
    except MALFORMED as exc:
        raise InputError(path, f"malformed {fmt.value} checkpoint ({summary(exc)})") from None
