"""Hostile and malformed checkpoint files, built from a genuine fixture by changing one thing each.

Each entry of `build(layout_dir, out)` is (file, words its one-line refusal must contain). Pickles are assembled
from opcodes: genuine values (tensors, numbers, strings) are pickled as they are and spliced in, and the hostile
parts (globals, calls, BUILD states, raw opcodes) are written by hand, so a file can reference exactly what an
attacker's would, without any of the attacker's code existing here.
"""

import io
import pickle
import re
import struct
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from stylediscover.generators.nvidia_pickle import PersistentRecord, read_snapshot


class G:
    """A global reference `module.name` (opcode GLOBAL)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class R:
    """A call `fn(*args)` (REDUCE), optionally followed by BUILD with `state`."""

    def __init__(self, fn, args: tuple, state=None):
        self.fn, self.args, self.state = fn, args, state


class Raw:
    """Opcodes written as they are."""

    def __init__(self, data: bytes):
        self.data = data


def encode(x) -> bytes:
    """The opcodes that push x (no PROTO, no STOP); memo entries of spliced values are self-contained."""
    if isinstance(x, Raw):
        return x.data
    if isinstance(x, G):
        return b"c" + f"{x.module}\n{x.name}\n".encode()
    if isinstance(x, R):
        out = encode(x.fn) + encode(tuple(x.args)) + b"R"
        return out + encode(x.state) + b"b" if x.state is not None else out
    if isinstance(x, PersistentRecord):
        meta = {"type": "class", "version": 6, "module_src": "", "class_name": x.class_name, "state": x.state}
        return encode(R(G("torch_utils.persistence", "_reconstruct_persistent_obj"), (meta,)))
    if isinstance(x, tuple):
        return b"(" + b"".join(map(encode, x)) + b"t"
    if isinstance(x, list):
        return b"](" + b"".join(map(encode, x)) + b"e"
    if isinstance(x, dict):
        if type(x) is not dict:
            return encode(R(G("collections", "OrderedDict"), ([[k, v] for k, v in x.items()],)))
        return b"}(" + b"".join(encode(k) + encode(v) for k, v in x.items()) + b"u"
    return pickle.dumps(x, protocol=3)[2:-1]


def dump(x, path: Path) -> None:
    path.write_bytes(b"\x80\x04" + encode(x) + b".")


def legacy_storage(numel: int, data: bytes, storage: str = "FloatStorage") -> bytes:
    """A legacy torch stream holding one storage that declares `numel` elements and carries `data`."""
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001,
                                                          {"protocol_version": 1001, "little_endian": True,
                                                           "type_sizes": {"short": 2, "int": 4, "long": 4}}))
    pid = b"\x80\x02(X\x07\x00\x00\x00storage" + f"ctorch\n{storage}\n".encode() + b"X\x01\x00\x00\x00kX\x03\x00\x00" \
        b"\x00cpu" + b"\x8a\x08" + struct.pack("<q", numel) + b"Nt" + b"Q."
    keys = pickle.dumps(["k"], protocol=2)
    return head + pid + keys + struct.pack("<q", numel) + data


def tensor(storage_bytes: bytes, size: tuple, stride: tuple, offset: int = 0, metadata=None) -> R:
    args = [R(G("torch.storage", "_load_from_bytes"), (storage_bytes,)), offset, size, stride, False,
            R(G("collections", "OrderedDict"), ())]
    if metadata is not None:
        args.append(metadata)
    return R(G("torch._utils", "_rebuild_tensor_v2"), tuple(args))


def _pickles(layout_dir: Path, out: Path, marker: Path) -> list[tuple[Path, str]]:
    cases = []

    def snapshot(name: str, words: str, change) -> None:
        data = read_snapshot(layout_dir / "nvidia_clamped.pkl")
        g = data["G_ema"]
        change(g)
        dump({"G_ema": g}, out / name)
        cases.append((out / name, words))

    def param(g, dotted: str, value) -> None:
        *path, leaf = dotted.split(".")
        record = g
        for part in path:
            record = record.child(part)
        group = "_parameters" if leaf in record.state["_parameters"] else "_buffers"
        record.state[group][leaf] = value

    four = struct.pack("<f", 1.0) * 4
    snapshot("stride0.pkl", "expands", lambda g: param(g, "mapping.fc0.weight", tensor(
        legacy_storage(1, four[:4]), (32, 32), (0, 0))))
    snapshot("past_storage.pkl", "reaches past", lambda g: param(g, "mapping.fc0.weight", tensor(
        legacy_storage(4, four), (32, 32), (32, 1))))
    snapshot("huge_storage_claim.pkl", "declared where fewer remain", lambda g: param(g, "mapping.fc0.bias", tensor(
        legacy_storage(10**12, four), (32,), (1,))))
    snapshot("string_tensor.pkl", "not a tensor", lambda g: param(g, "mapping.fc0.weight", "not a tensor"))
    snapshot("metadata_not_dict.pkl", "metadata", lambda g: param(g, "mapping.fc0.bias", tensor(
        legacy_storage(32, four * 8), (32,), (1,), metadata=[1, 2])))
    empty_hooks = R(G("collections", "OrderedDict"), ())
    snapshot("storage_is_string.pkl", "storage belongs", lambda g: param(g, "mapping.fc0.bias", R(
        G("torch._utils", "_rebuild_tensor_v2"), ("abc", 0, (3,), (1,), False, empty_hooks))))
    snapshot("z_dim_huge.pkl", "z_dim", lambda g: g.state.update(z_dim=6_000_000))
    snapshot("resolution_2048.pkl", "resolution", lambda g: g.state.update(img_resolution=2048))
    snapshot("filter_shape.pkl", "resample filter", lambda g: param(g, "synthesis.b8.conv0.resample_filter",
                                                                    torch.ones(2, 2)))
    forged_dtype = R(G("numpy", "dtype"), ("f8", False, True), (3, "|", None, ("a",), {"a": ("O", 0)}, 8, 1, 63))
    snapshot("forged_dtype.pkl", "numpy dtype state", lambda g: g.state.update(
        act_gain=R(G("numpy._core.multiarray", "scalar"), (forged_dtype, b"\x00" * 8))))
    snapshot("object_dtype.pkl", "not a plain numeric type", lambda g: g.state.update(
        act_gain=R(G("numpy._core.multiarray", "scalar"), (R(G("numpy", "dtype"), ("O8", False, True)), b"\x00" * 8))))
    plain = R(G("numpy", "dtype"), ("f8", False, True), (3, "<", None, None, None, -1, -1, 0))
    snapshot("scalar_size.pkl", "scalar", lambda g: g.state.update(
        act_gain=R(G("numpy._core.multiarray", "scalar"), (plain, b"\x00" * 64))))
    for name, body, words in (
            ("binbytes8.pkl", b"\x8e" + struct.pack("<Q", 2**50) + b"xx", "declared where"),
            ("deep.pkl", b"]" * 200_000 + b"a" * 199_999, "nested more than"),
            ("deep_memo.pkl", b"]q\x00" + b"]h\x00aq\x00" * 5000, "nested more than"),
            ("many_opcodes.pkl", b"N0" * 1_100_000 + b"N", "opcodes"),
            ("os_system.pkl", b"cos\nsystem\n(" + encode(f"touch {marker}") + b"tR", "'os.system'"),
            ("persistent_id.pkl", b"X\x01\x00\x00\x00aQ", "persistent id")):
        (out / name).write_bytes(b"\x80\x04" + body + b".")
        cases.append((out / name, words))
    return cases


def _torch_files(layout_dir: Path, out: Path) -> list[tuple[Path, str]]:
    """rosinality checkpoints, each in the zip and the legacy torch format."""
    genuine = torch.load(layout_dir / "rosinality.pt", weights_only=True)
    variants = {
        "g_ema_list": ({**genuine, "g_ema": list(genuine["g_ema"].values())}, "expected a state dict"),
        "g_ema_ints": ({**genuine, "g_ema": {k: 1 for k in genuine["g_ema"]}}, "floating-point tensor"),
        "latent_avg_string": ({**genuine, "latent_avg": "zero"}, "latent_avg"),
        "latent_avg_size": ({**genuine, "latent_avg": torch.zeros(7)}, "latent_avg"),
        "stride0": ({**genuine, "g_ema": {**genuine["g_ema"],
                                          "style.1.weight": torch.zeros(1).expand(40_000_000)}}, "expands"),
        "g_ema_nan": ({**genuine, "g_ema": {k: v.clone().fill_(float("nan")) for k, v in genuine["g_ema"].items()}},
                      "holds NaN or infinite values"),
        "g_ema_inf": ({**genuine, "g_ema": {**genuine["g_ema"], "style.1.bias": genuine["g_ema"]["style.1.bias"]
                                            .clone().fill_(float("inf"))}}, "mapping.fc0.bias: holds NaN or infinite"),
        "g_ema_float8": ({**genuine, "g_ema": {k: v.to(torch.float8_e5m2) for k, v in genuine["g_ema"].items()}},
                         "float8"),
        "resolution_2048": ({**genuine, "g_ema": {**genuine["g_ema"], **{
            f"to_rgbs.{j}.conv.weight": genuine["g_ema"]["to_rgbs.0.conv.weight"] for j in range(9)}}}, "resolution"),
    }
    cases = []
    for name, (obj, words) in variants.items():
        for zipped in (True, False):
            path = out / f"rosinality_{name}_{'zip' if zipped else 'legacy'}.pt"
            torch.save(obj, path, _use_new_zipfile_serialization=zipped)
            cases.append((path, words))
    huge = io.BytesIO()
    torch.save({"g_ema": {"w": torch.zeros(77)}}, huge, _use_new_zipfile_serialization=False)
    data = re.sub(rb"(cpuq.)K\x4d", lambda m: m.group(1) + b"\x8a\x08" + struct.pack("<q", 10**11), huge.getvalue())
    assert data != huge.getvalue()
    (out / "rosinality_huge_claim_legacy.pt").write_bytes(data)
    cases.append((out / "rosinality_huge_claim_legacy.pt", "declared where fewer remain"))
    return cases


def _safetensors(layout_dir: Path, out: Path, native: Path) -> list[tuple[Path, str]]:
    with safe_open(str(native), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cases = []

    def write(name: str, words: str, meta_change: dict, new_tensors: dict | None = None) -> None:
        save_file(tensors if new_tensors is None else new_tensors, str(out / name), metadata={**meta, **meta_change})
        cases.append((out / name, words))

    config = meta["config"]
    wide = config.replace('"channels":{"4":64,"8":64,"16":32,"32":16}', '"channels":{"4":4000,"8":4000,"16":4000,'
                          '"32":4000}')
    assert wide != config
    write("wide_216_bytes.safetensors", "do not match", {"config": wide}, {"w": torch.zeros(1)})
    write("resolution_2048.safetensors", "resolution", {"config": config.replace('"resolution":32',
                                                                                 '"resolution":2048')})
    write("z_dim_huge.safetensors", "z_dim", {"config": config.replace('"z_dim":32', '"z_dim":6000000')})
    write("half_tensors.safetensors", "do not match", {}, {k: v.half().flatten()[:1] for k, v in tensors.items()})
    write("int_tensors.safetensors", "non-floating", {}, {k: v.long() for k, v in tensors.items()})
    (out / "header_claim.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{" + b" " * 100)
    cases.append((out / "header_claim.safetensors", ""))
    return cases


def build(layout_dir: Path, out: Path, native: Path, marker: Path) -> list[tuple[Path, str]]:
    """Writes every hostile file under `out`; `native` is a genuine native conversion of rosinality.pt; files
    that would run code make `marker` if they ever did."""
    out.mkdir(parents=True, exist_ok=True)
    return _pickles(layout_dir, out, marker) + _torch_files(layout_dir, out) + _safetensors(layout_dir, out, native)
