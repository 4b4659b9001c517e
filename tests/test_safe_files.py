"""stylediscover.safe_files on its own: special files refused once open, limits on reading, hashing, inflating and
JSON values, each as one InputError naming the file."""

import io
import os
import struct
import zipfile

import pytest
from pydantic import BaseModel

from stylediscover.errors import InputError
from stylediscover.safe_files import parse_model, read_bytes, sha256_file, unzip_limited


@pytest.mark.parametrize("make, problem", [
    (lambda tmp: (os.mkfifo(tmp / "f"), tmp / "f")[1], "is a FIFO"),
    (lambda tmp: "/dev/zero", "is a character device"),
    (lambda tmp: "/proc/self/status", "kernel pseudo-file"),
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: tmp / "missing", "no such file"),
])
def test_only_regular_files_are_opened(tmp_path, make, problem):
    path = make(tmp_path)
    for action in (lambda: read_bytes(path, 100), lambda: sha256_file(path)):
        with pytest.raises(InputError, match=problem) as caught:
            action()
        assert caught.value.source == str(path)


def test_reads_and_hashes_are_limited(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1000)
    assert read_bytes(path, 1000) == b"x" * 1000
    with pytest.raises(InputError, match="1000 bytes; a file of more than 999 bytes is refused unread"):
        read_bytes(path, 999)
    with pytest.raises(InputError, match="is not hashed"):
        sha256_file(path, limit=10)
    assert sha256_file(path) == sha256_file(path, limit=1000)


def test_a_zip_inflates_within_its_limit_even_when_its_headers_lie():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.npy", bytes(10 << 20))
    data = bytearray(buffer.getvalue())
    with pytest.raises(InputError, match="inflates to 10485760 bytes"):
        unzip_limited(bytes(data), "x.npz", 4, 1 << 20)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # declare 10 bytes inflated
        at = data.index(signature) + offset
        data[at:at + 4] = struct.pack("<I", 10)
    with pytest.raises(InputError, match="x.npz: not a readable zip archive"):
        unzip_limited(bytes(data), "x.npz", 4, 1 << 20)
    with pytest.raises(InputError, match="an archive of 1 members; at most 0"):
        unzip_limited(buffer.getvalue(), "x.npz", 0, 1 << 30)


class Doc(BaseModel):
    values: list[int]


def test_json_is_counted_before_it_is_parsed():
    assert parse_model(b'{"values": [1, 2]}', Doc, "d.json").values == [1, 2]
    with pytest.raises(InputError, match="d.json: over 10 JSON values"):
        parse_model(b'{"values": [' + b"[]," * 20 + b"1]}", Doc, "d.json", max_values=10)
    with pytest.raises(InputError, match="nested too deeply"):
        parse_model(b"[" * 100_000 + b"]" * 100_000, Doc, "d.json", max_values=10**6)
    with pytest.raises(InputError, match="d.json: values.0: Input should be a valid integer"):
        parse_model(b'{"values": ["a"]}', Doc, "d.json")
