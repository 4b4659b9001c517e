"""Hostile and malformed inputs other than checkpoint pickles (those are tests/hostile_corpus.py): directions manifests
and files, recipes, latents, images, special files (FIFOs, devices, /proc) and safetensors/torch checkpoints that
attack memory, each built from the committed quickstart export by changing one thing.

`build(root)` writes every file under `root` and returns the cases: (name, command arguments with OUT standing for
the output path, words the one-line refusal must contain, the files the command reads). Run it as a script to list
them: python tests/hostile_inputs.py DIR
"""

import base64
import copy
import io
import json
import os
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from explore_world import QUICKSTART
from safetensors.torch import load_file, save_file

OUT = "{out}"
BUILTIN = "builtin:shapes"
SHAPES = {"ws": (8, 128)} | {f"noise_{i}": s for i, s in enumerate([(4, 4), (8, 8), (8, 8), (16, 16), (16, 16),
                                                                       (32, 32), (32, 32)])}


@dataclass
class Case:
    name: str
    args: list[str]
    words: str
    reads: list[Path] = field(default_factory=list)


def npy(shape: tuple, descr: str = "<f4", data: bytes | None = None) -> bytes:
    """A .npy file whose header declares `shape` and `descr`, followed by `data` (default: zeros of that size)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    if data is None:
        data = bytes(int(np.prod(shape)) * np.dtype(descr).itemsize)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def good_latent(**changes: bytes | None) -> bytes:
    """A latent .npz for builtin:shapes with members replaced (bytes) or removed (None)."""
    members = {f"{k}.npy": npy(s) for k, s in SHAPES.items()} | {"source.npy": npy((), "<U4", b"a\0\0\0" * 4)}
    for name, data in changes.items():
        members.pop(f"{name}.npy") if data is None else members.update({f"{name}.npy": data})
    return npz(members)


def inflating_zip(member: str, size: int) -> bytes:
    """A zip of one deflated member of `size` zero bytes (about size / 1000 bytes on disk)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    return buffer.getvalue()


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def link(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def _export(root: Path, name: str, manifest=None, tensors=None, raw_json: bytes | None = None) -> Path:
    """An export folder <root>/<name>/ (quickstart's files, manifest or tensors replaced); its directions file."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "directions.json").write_bytes(raw_json if raw_json is not None else json.dumps(
        manifest if manifest is not None else json.loads((QUICKSTART / "directions.json").read_text())).encode())
    if tensors is None:
        (folder / "directions.safetensors").write_bytes((QUICKSTART / "directions.safetensors").read_bytes())
    elif isinstance(tensors, bytes):
        (folder / "directions.safetensors").write_bytes(tensors)
    else:
        save_file(tensors, str(folder / "directions.safetensors"), metadata={"format": "stylediscover.directions/1"})
    return folder / "directions.safetensors"


def _manifests(root: Path) -> list[Case]:
    good = json.loads((QUICKSTART / "directions.json").read_text())
    tensors = load_file(QUICKSTART / "directions.safetensors")

    def changed(fn) -> dict:
        m = copy.deepcopy(good)
        fn(m)
        return m

    def entry(k: int, **values):
        return lambda m: m["directions"][k].update(values)

    adaptive = {**good["config"]["navigator"], "attention": "adaptive", "hidden": 2_000_000}
    variants = {
        "config_missing": (lambda m: m.pop("config"), "config: Field required"),
        "config_null": (lambda m: m.update(config=None), "config: Input should be a valid dictionary"),
        "scale_string": (lambda m: m.update(scale="6.3"), "scale: Input should be a valid number"),
        "responses_string": (entry(0, responses="0.1"), "directions.0.responses"),
        "fewer_entries": (lambda m: m["directions"].pop(), "15 direction entries"),
        "no_entries": (lambda m: m.update(directions=[]), "directions: List should have at least 1 item"),
        "hidden_2e6": (lambda m: m["config"].update(navigator=adaptive), "config.navigator.hidden"),
        "num_directions_1e12": (lambda m: m["config"]["navigator"].update(num_directions=10**12),
                                "config.navigator.num_directions"),
        "format_other": (lambda m: m.update(format="other/1"), "format"),
        "layers_past_end": (entry(3, layers=[0, 99]), "directions.3.layers"),
        "layers_string": (entry(3, layers="0-7"), "directions.3.layers"),
        "unknown_attribute": (entry(2, dominant_attribute="smile"), "'smile'"),
        "index_out_of_order": (entry(1, index=5), "directions.1.index is 5"),
        "response_negative": (entry(0, response=-1.0), "directions.0.response"),
        "response_huge": (entry(0, response=1e308), "directions.0.response"),
        "scale_overflow": (lambda m: m.update(scale=1e999), "scale"),
        "scale_zero": (lambda m: m.update(scale=0), "scale"),
        "entry_scale_1e308": (entry(4, scale=1e308), "directions.4.scale"),
        "num_ws_zero": (lambda m: m["generator"].update(num_ws=0), "generator.num_ws"),
        "w_dim_huge": (lambda m: m["generator"].update(w_dim=10**9), "generator.w_dim"),
        "attributes_10000": (lambda m: m.update(attributes=[f"a{i}" for i in range(10_000)]), "attributes"),
        "responses_short": (entry(0, responses=[0.1]), "responses has 1 values"),
        "features_unknown": (lambda m: m["config"]["features"].update(name="resnet"), "config.features.name"),
        "class_index_negative": (lambda m: m["config"].update(class_index=-1), "config.class_index"),
        "generator_empty": (lambda m: m["config"].update(generator=""), "config.generator"),
        "entries_1e6": (lambda m: m.update(directions=[{}] * 1_000_000), "over 250000 JSON values"),
        "navigator_wrong_kernel": (lambda m: m["config"]["navigator"].update(smooth_kernel=4), "smooth_kernel"),
    }
    cases = []
    for name, (fn, words) in variants.items():
        path = _export(root, f"manifest_{name}", changed(fn))
        cases.append(Case(f"manifest_{name}", ["traverse", str(path), "--out", OUT], words,
                          [path, path.with_suffix(".json")]))
    raw = {"deep_nesting": (b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
           "top_level_array": (b"[1, 2, 3]", "Input should be a valid dictionary"),
           "empty": (b"", "not valid JSON"),
           "binary": (bytes(range(256)) * 4, "not valid JSON"),
           "oversized": (b" " * (9 << 20) + b"{}", "refused unread")}
    for name, (data, words) in raw.items():
        path = _export(root, f"manifest_{name}", raw_json=data)
        cases.append(Case(f"manifest_{name}", ["traverse", str(path), "--out", OUT], words,
                          [path, path.with_suffix(".json")]))
    latent = root / "good_latent.npz"
    latent.write_bytes(good_latent())
    for name in ("config_null", "hidden_2e6", "entries_1e6", "fewer_entries", "deep_nesting"):
        path = root / f"manifest_{name}" / "directions.safetensors"
        for command, args in (("evaluate", ["evaluate", str(path)]),
                              ("explore", ["explore", str(path.parent), "--static", OUT]),
                              ("edit", ["edit", str(latent), "--directions", str(path), "--direction", "0", "--out",
                                        OUT])):
            words = next(c.words for c in cases if c.name == f"manifest_{name}")
            cases.append(Case(f"manifest_{name}_{command}", args, words, [path, path.with_suffix(".json")]))
    hidden = changed(lambda m: m["config"].update(navigator={**adaptive, "hidden": 4000}))
    path = _export(root, "manifest_hidden_4000_no_weights", hidden)
    cases.append(Case("manifest_hidden_4000_no_weights", ["traverse", str(path), "--out", OUT],
                      "navigator weights do not match", [path, path.with_suffix(".json")]))
    return cases + _directions_files(root, good, tensors)


def _directions_files(root: Path, good: dict, tensors: dict) -> list[Case]:
    nan, inf = dict(tensors), dict(tensors)
    nan["deltas"] = tensors["deltas"].clone().index_fill_(0, torch.tensor([3]), float("nan"))
    inf["directions"] = tensors["directions"].clone().index_fill_(0, torch.tensor([0]), float("inf"))
    attention = dict(tensors, attention=tensors["attention"][:, :7].contiguous())
    missing = {k: v for k, v in tensors.items() if k != "attention"}
    many = b"{" + b",".join(b'"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i
                             for i in range(15_000)) + b"}"
    huge_header = b'{"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' + b" " * (2 << 20) + b"}"
    variants = {
        "nan_deltas": (nan, "deltas: holds NaN or infinite values"),
        "inf_directions": (inf, "directions: holds NaN or infinite values"),
        "int_deltas": (dict(tensors, deltas=tensors["deltas"].long()), "deltas: dtype I64 is not supported"),
        "float8_deltas": (dict(tensors, deltas=tensors["deltas"].to(torch.float8_e4m3fn)), "dtype F8_E4M3"),
        "attention_shape": (attention, "attention: shape [16, 7]"),
        "attention_missing": (missing, "attention: missing"),
        "extra_tensor": (dict(tensors, secret=torch.zeros(3)), "unexpected tensors"),
        "wide_deltas": (dict(tensors, deltas=torch.zeros(16, 8, 129)), "deltas: shape [16, 8, 129]"),
        "header_15000_tensors": (struct.pack("<Q", len(many)) + many, "naming over 64 tensors"),
        "header_2mb": (struct.pack("<Q", len(huge_header)) + huge_header, "header of"),
        "header_claim": (struct.pack("<Q", 2**40) + b"{}", "header of 1099511627776 bytes"),
        "truncated": ((QUICKSTART / "directions.safetensors").read_bytes()[:5000], "cannot read directions"),
    }
    cases = []
    for name, (value, words) in variants.items():
        path = _export(root, f"directions_{name}", good, value)
        cases.append(Case(f"directions_{name}", ["traverse", str(path), "--out", OUT], words,
                          [path, path.with_suffix(".json")]))
    return cases


def _specials(root: Path, good_export: Path) -> list[Case]:
    """Special files where a manifest, directions file, recipe, latent, image or checkpoint belongs."""
    folder = root / "specials"
    folder.mkdir()
    cases = []

    def export_with(name: str, json_target=None, tensors_target=None) -> Path:
        target = folder / name
        target.mkdir()
        for part, replacement in (("directions.json", json_target), ("directions.safetensors", tensors_target)):
            if replacement is None:
                (target / part).write_bytes((good_export.parent / part).read_bytes())
            else:
                replacement(target / part)
        return target / "directions.safetensors"

    for name, make, words in (
            ("manifest_fifo", lambda p: fifo(p), "is a FIFO"),
            ("manifest_dev_zero", lambda p: link(p, "/dev/zero"), "is a character device"),
            ("manifest_proc", lambda p: link(p, "/proc/self/status"), "kernel pseudo-file"),
            ("manifest_folder", lambda p: p.mkdir(), "is a folder")):
        path = export_with(name, json_target=make)
        cases.append(Case(f"special_{name}", ["traverse", str(path), "--out", OUT], words,
                          [path.with_suffix(".json")]))
    for name, make, words in (
            ("directions_fifo", lambda p: fifo(p), "is a FIFO"),
            ("directions_dev_zero", lambda p: link(p, "/dev/zero"), "is a character device")):
        path = export_with(name, tensors_target=make)
        cases.append(Case(f"special_{name}", ["traverse", str(path), "--out", OUT], words))
    recipe_fifo = fifo(folder / "recipe_fifo.json")
    for name, target, words in (("recipe_fifo", recipe_fifo, "is a FIFO"),
                                ("recipe_dev_zero", link(folder / "zero.json", "/dev/zero"), "character device"),
                                ("recipe_proc_mem", link(folder / "mem.json", "/proc/self/mem"), "pseudo-file")):
        cases.append(Case(f"special_{name}", ["edit", "--recipe", str(target), "--out", OUT], words))
    edit = ["--directions", str(good_export), "--direction", "0", "--out", OUT]
    cases.append(Case("special_latent_fifo", ["edit", str(fifo(folder / "latent.npz")), *edit], "is a FIFO"))
    cases.append(Case("special_image_fifo", ["edit", str(fifo(folder / "photo.png")), *edit], "is a FIFO"))
    cases.append(Case("special_image_dev_zero", ["edit", str(link(folder / "zero.png", "/dev/zero")), *edit],
                      "character device"))
    from PIL import Image

    bomb = folder / "bomb.png"
    Image.new("1", (10_000, 5_000)).save(bomb)  # 50 megapixels in a few kB
    cases.append(Case("special_image_bomb", ["edit", str(bomb), *edit], "10000×5000 pixels; at most", [bomb]))
    for name, source, words in (("proc_mem", "/proc/self/mem", "kernel pseudo-file"),
                                ("dev_zero", "/dev/zero", "character device"),
                                ("fifo", str(fifo(folder / "ckpt.pkl")), "is a FIFO")):
        cases.append(Case(f"special_convert_{name}", ["generators", "convert", source, "--out", OUT], words))
    return cases


def base_recipe(good_export: Path) -> dict:
    """A recipe of builtin:shapes and the export `good_export` (a samples recipe, its hashes right)."""
    from stylediscover.generators import generator_path
    from stylediscover.generators.registry import sha256_of

    return {"format": "stylediscover.recipe/1",
            "generator": {"source": BUILTIN, "class_index": None, "sha256": sha256_of(generator_path(BUILTIN))},
            "directions": {"path": str(good_export), "sha256": sha256_of(good_export)},
            "strengths": [{"index": 1, "attribute": "object_x", "multiple": 1.0, "strength": 2.0}],
            "samples": {"seeds": [0], "truncation": 0.7}}


def _recipes(root: Path, good_export: Path) -> list[Case]:
    folder = root / "recipes"
    folder.mkdir()
    base = base_recipe(good_export)

    def with_latent(data: bytes) -> dict:
        return {**{k: v for k, v in base.items() if k != "samples"},
                "latent": {"name": "x.png", "npz_base64": base64.b64encode(data).decode()}}

    def strength(**values) -> dict:
        return {**base, "strengths": [{**base["strengths"][0], **values}]}

    nested = b'{"format": "stylediscover.recipe/1", "samples": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    variants = {
        "strength_1e308": (strength(strength=1e308), "strengths.0.strength"),
        "multiple_1e308": (strength(multiple=1e308), "strengths.0.multiple"),
        "strength_inf": (json.dumps(base).replace('"strength": 2.0', '"strength": 1e999').encode(), "strength"),
        "duplicate_index": ({**base, "strengths": base["strengths"] * 2}, "given twice"),
        "index_past_k": (strength(index=16), "no direction 16"),
        "seeds_1000": ({**base, "samples": {"seeds": list(range(1000)), "truncation": 0.7}}, "samples.seeds"),
        "generator_dev_zero": ({**base, "generator": {**base["generator"], "source": "/dev/zero"}},
                               "generator: /dev/zero: is a character device"),
        "directions_proc": ({**base, "directions": {**base["directions"], "path": "/proc/self/environ"}},
                            "kernel pseudo-file"),
        "sha_malformed": ({**base, "directions": {**base["directions"], "sha256": "xyz"}}, "directions.sha256"),
        "nested": (nested, "nested too deeply"),
        "noise_wrong_shape": (with_latent(good_latent(noise_3=npy((8, 8)))), "noise_3: shape [8, 8]"),
        "ws_1e12": (with_latent(good_latent(ws=npy((10**12,), data=b""))), "ws: shape [1000000000000]"),
        "ws_object": (with_latent(good_latent(ws=npy((8, 128), "|O", b""))), "ws"),
        "ws_int": (with_latent(good_latent(ws=npy((8, 128), "<i8"))), "ws: dtype int64"),
        "ws_nan": (with_latent(good_latent(ws=npy((8, 128), "<f4", b"\xff\xff\xff\x7f" * 1024))), "ws: holds NaN"),
        "ws_short": (with_latent(good_latent(ws=npy((8, 128), "<f4", bytes(100)))), "ws: holds 100 data bytes"),
        "noise_missing": (with_latent(good_latent(noise_6=None)), "noise_6: missing"),
        "latent_not_base64": ({**with_latent(b""), "latent": {"name": "", "npz_base64": "@@@@"}}, "not base64"),
        "latent_not_zip": (with_latent(b"just bytes, no archive"), "not a readable zip"),
        "latent_inflates_400mb": (with_latent(inflating_zip("ws.npy", 400 << 20)), "inflates to 419430400 bytes"),
        "both_sources": ({**with_latent(good_latent()), "samples": base["samples"]}, "exactly one of"),
    }
    cases = []
    for name, (doc, words) in variants.items():
        path = folder / f"{name}.json"
        path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        cases.append(Case(f"recipe_{name}", ["edit", "--recipe", str(path), "--out", OUT], words, [path]))
    sparse = folder / "sparse.json"
    with open(sparse, "wb") as f:
        f.truncate(600 << 20)
    cases.append(Case("recipe_600mb_sparse", ["edit", "--recipe", str(sparse), "--out", OUT], "refused unread"))
    return cases


def _latents(root: Path, good_export: Path) -> list[Case]:
    folder = root / "latents"
    folder.mkdir()
    variants = {
        "ws_wrong_shape": (good_latent(ws=npy((3, 16))), "ws: shape [3, 16]"),
        "ws_1e12": (good_latent(ws=npy((10**12,), data=b"")), "ws: shape [1000000000000]"),
        "ws_pickled": (good_latent(ws=npy((8, 128), "|O", b"\x80\x04N.")), "ws"),
        "noise_inf": (good_latent(noise_0=npy((4, 4), "<f4", b"\x00\x00\x80\x7f" * 16)), "noise_0: holds NaN"),
        "noise_missing": (good_latent(noise_2=None), "noise_2: missing"),
        "inflates_400mb": (inflating_zip("ws.npy", 400 << 20), "inflates to 419430400 bytes"),
        "not_zip": (b"PK\x03\x04 truncated", "not a readable zip"),
        "members_1000": (npz({f"m{i}.npy": b"" for i in range(1000)}), "1000 members"),
    }
    cases = []
    for name, (data, words) in variants.items():
        path = folder / f"{name}.npz"
        path.write_bytes(data)
        cases.append(Case(f"latent_{name}", ["edit", str(path), "--directions", str(good_export), "--direction",
                                             "0", "--out", OUT], words, [path]))
    return cases


def _checkpoints(root: Path) -> list[Case]:
    """Native and torch checkpoints attacking memory or carrying unusable weights (builtin:shapes' generator)."""
    from stylediscover.generators import generator_path

    folder = root / "checkpoints"
    folder.mkdir()
    native = generator_path(BUILTIN)
    from safetensors import safe_open

    with safe_open(str(native), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    first = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    cases = []
    for name, value, words in (
            ("nan", tensors[first].clone().fill_(float("nan")), "holds NaN or infinite"),
            ("inf", tensors[first].clone().fill_(float("inf")), "holds NaN or infinite"),
            ("float8", tensors[first].to(torch.float8_e5m2), "dtype F8_E5M2 is not supported")):
        path = folder / f"weights_{name}.safetensors"
        save_file({**tensors, first: value}, str(path), metadata=meta)
        cases.append(Case(f"checkpoint_{name}", ["generators", "convert", str(path), "--out", OUT], words, [path]))
    zero_size = b"{" + b",".join(b'"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i
                                 for i in range(400_000)) + b"}"
    path = folder / "header_400k_tensors.safetensors"
    path.write_bytes(struct.pack("<Q", len(zero_size)) + zero_size)
    cases.append(Case("checkpoint_header_400k_tensors", ["generators", "convert", str(path), "--out", OUT],
                      "header of", [path]))
    many = b"{" + b",".join(b'"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}' % i
                            for i in range(50_000)) + b"}"
    path = folder / "header_50k_tensors.safetensors"
    path.write_bytes(struct.pack("<Q", len(many)) + many)
    cases.append(Case("checkpoint_header_50k_tensors", ["generators", "convert", str(path), "--out", OUT],
                      "naming over 4096 tensors", [path]))
    shared = torch.zeros(2_000_000, dtype=torch.float16)
    path = folder / "shared_storage_300_keys.pt"
    torch.save({"g_ema": {f"style.{i}.weight": shared for i in range(300)}}, path)
    cases.append(Case("checkpoint_shared_storage_300_keys", ["generators", "convert", str(path), "--out", OUT],
                      "", [path]))
    return cases


def build(root: Path) -> list[Case]:
    """Writes every hostile input under `root` (which must not exist yet) and returns the cases."""
    root.mkdir(parents=True)
    good_export = _export(root, "good")
    return (_manifests(root) + _specials(root, good_export) + _recipes(root, good_export)
            + _latents(root, good_export) + _checkpoints(root))


if __name__ == "__main__":
    for case in build(Path(sys.argv[1])):
        print(f"{case.name:<44} {' '.join(case.args)[:80]}")
