"""Bad checkpoint files: refused with an error naming the file, and nothing in them is executed."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import LAYOUTS
from safetensors import safe_open
from safetensors.torch import save_file

from stylediscover.cli import main
from stylediscover.errors import InputError
from stylediscover.generators import load_generator


def snapshot_with_payload(path: Path, marker: Path) -> None:
    """A snapshot-shaped pickle whose `module_src` writes `marker` when NVIDIA-style loading execs it."""
    src = f"open({str(marker)!r}, 'w').write('executed')\nclass Generator:\n    pass\n"
    code = (
        "import pickle, sys\n"
        "from torch_utils import persistence\n"
        "class Rec:\n"
        "    def __reduce__(self):\n"
        f"        return (persistence._reconstruct_persistent_obj, (dict(type='class', version=6, module_src={src!r},"
        " class_name='Generator', state={}),))\n"
        f"pickle.dump({{'G_ema': Rec()}}, open({str(path)!r}, 'wb'))\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(LAYOUTS)})


def test_module_source_in_snapshot_is_never_executed(tmp_path):
    path, marker = tmp_path / "payload.pkl", tmp_path / "marker"
    snapshot_with_payload(path, marker)
    with pytest.raises(InputError, match="payload.pkl"):
        load_generator(path)
    assert not marker.exists()
    # The same file through NVIDIA-style unpickling does execute the payload: the check above can fail.
    load = f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"
    subprocess.run([sys.executable, "-c", load], check=True, env={**os.environ, "PYTHONPATH": str(LAYOUTS)})
    assert marker.read_text() == "executed"


def test_foreign_global_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x02cos\nsystem\n(X" + f"touch {marker}".encode() + b"\ntR.")
    with pytest.raises(InputError, match=r"evil\.pkl.*'os\.system'.*nothing from the file was executed"):
        load_generator(path)
    assert not marker.exists()


def test_tensorflow_pickle_gets_conversion_hint(tmp_path):
    path = tmp_path / "tf.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.")
    with pytest.raises(InputError, match="TensorFlow StyleGAN pickle"):
        load_generator(path)


@pytest.mark.parametrize("name", ["nvidia_ffhq_like.pkl", "rosinality.pt"])
def test_truncated_checkpoint(layout_dir, tmp_path, name):
    data = (layout_dir / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=name.replace(".", r"\.")):
        load_generator(path)


def test_truncated_native(layout_dir, tmp_path):
    full = tmp_path / "g.safetensors"
    assert CliRunner().invoke(main, ["generators", "convert", str(layout_dir / "rosinality.pt"),
                                     "--out", str(full)]).exit_code == 0
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(full.read_bytes()[:-1000])
    with pytest.raises(InputError, match="cut.safetensors"):
        load_generator(cut)


@pytest.mark.parametrize("content, message", [
    (b"", "empty or truncated"),
    (b"hello world, not a model", "not a recognised generator checkpoint"),
    (pickle.dumps([1, 2, 3], protocol=4), "expected a snapshot dict"),
    (pickle.dumps({"G": None}, protocol=4), "G_ema: no generator network"),
])
def test_wrong_content(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_generator(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint file"):
        load_generator(tmp_path / "nope.pkl")


def rewrite_native(src: Path, dst: Path, edit) -> None:
    with safe_open(str(src), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta, tensors = edit(meta, tensors)
    save_file(tensors, str(dst), metadata=meta)


@pytest.fixture
def native_file(layout_dir, tmp_path) -> Path:
    out = tmp_path / "g.safetensors"
    assert CliRunner().invoke(main, ["generators", "convert", str(layout_dir / "rosinality.pt"),
                                     "--out", str(out)]).exit_code == 0
    return out


def test_native_config_not_matching_weights(native_file, tmp_path):
    bad = tmp_path / "mismatch.safetensors"
    rewrite_native(native_file, bad, lambda m, t: ({**m, "config": m["config"].replace('"32":16', '"32":8')}, t))
    with pytest.raises(InputError, match=r"mismatch\.safetensors: weights do not match.*synthesis\.b32"):
        load_generator(bad)


def test_native_invalid_config_field_is_named(native_file, tmp_path):
    bad = tmp_path / "badfield.safetensors"
    rewrite_native(native_file, bad,
                   lambda m, t: ({**m, "config": m["config"].replace('"resolution":32', '"resolution":48')}, t))
    with pytest.raises(InputError, match=r"badfield\.safetensors: metadata\.config\.resolution: .*power of two"):
        load_generator(bad)


def test_native_missing_tensor_is_named(native_file, tmp_path):
    bad = tmp_path / "missing.safetensors"
    rewrite_native(native_file, bad, lambda m, t: (m, {k: v for k, v in t.items() if k != "mapping.fc0.bias"}))
    with pytest.raises(InputError, match=r"missing \['mapping\.fc0\.bias'\]"):
        load_generator(bad)


def test_cli_reports_bad_input_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["generators", "sample", "--generator", str(tmp_path / "x.pkl"),
                                       "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'x.pkl'}: no such checkpoint file"
    assert "Traceback" not in result.output
