"""Bounded, restricted reading of pickles and legacy torch streams that strangers wrote.

Three defences, each before anything is built from the file:
  scan      the opcode stream is walked with pickletools: at most MAX_OPCODES opcodes, objects nested at most
            MAX_DEPTH deep, and no declared length beyond the bytes left in the file
  globals   the unpickler resolves only the globals its caller allows; numpy dtypes only of PLAIN_DTYPES (no
            fields, flags or sub-arrays), scalars only of those with exactly their byte size; a tensor only as a
            view inside its storage with no more elements than the storage holds (no stride-0 expansion)
  storages  legacy torch streams (`torch.save(..., _use_new_zipfile_serialization=False)`, also how storages
            are nested in NVIDIA snapshots) are read here: a storage is allocated only once its declared
            size fits in the bytes that follow, and filled from them
Violations raise InputError naming the file.
"""

import io
import math
import pickle
import pickletools
import struct
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
import torch

from stylediscover.errors import InputError, summary

MAX_OPCODES = 2_000_000
MAX_DEPTH = 100
MAX_DIMS = 8
PLAIN_DTYPES = {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    ("torch", "FloatStorage"): torch.float32, ("torch", "HalfStorage"): torch.float16,
    ("torch", "DoubleStorage"): torch.float64, ("torch", "BFloat16Storage"): torch.bfloat16,
    ("torch", "LongStorage"): torch.int64, ("torch", "IntStorage"): torch.int32,
    ("torch", "ShortStorage"): torch.int16, ("torch", "CharStorage"): torch.int8,
    ("torch", "ByteStorage"): torch.uint8, ("torch", "BoolStorage"): torch.bool,
    ("torch.storage", "UntypedStorage"): torch.uint8,
}


class _Refused(Exception):
    """A violation found while scanning; becomes an InputError naming the file."""


class _BoundedReader:
    """The read side of a file for pickletools: refuses reads past `end` instead of allocating them."""

    def __init__(self, f: BinaryIO, end: int):
        self.f, self.end = f, end

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.f.tell()
        if n < 0:
            n = left
        if n > left:
            raise _Refused(f"a length of {n} bytes is declared where {left} remain")
        return self.f.read(n)

    def readline(self) -> bytes:
        return self.f.readline(self.end - self.f.tell())

    def tell(self) -> int:
        return self.f.tell()


_CONTAINER_FROM_MARK = {"TUPLE", "LIST", "DICT", "FROZENSET", "INST", "OBJ"}
_EXTEND = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS"}


def scan(f: BinaryIO, end: int, check_global: Callable[[str, str], Any]) -> None:
    """Walks one pickle from f's position to its STOP without building anything, then rewinds. Raises _Refused
    when it has over MAX_OPCODES opcodes, nests objects over MAX_DEPTH deep, declares lengths beyond `end`, or
    names a global (GLOBAL, INST) that `check_global(module, name)` refuses.

    Nesting is tracked on a model of the unpickler's stack and memo: each entry carries the depth of the object
    it stands for (a mutable cell, so that later APPENDs to a memoised list count)."""
    start = f.tell()
    stack: list[list[int]] = []
    marks: list[int] = []
    memo: dict[Any, list[int]] = {}
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(_BoundedReader(f, end))):
            if count >= MAX_OPCODES:
                raise _Refused(f"more than {MAX_OPCODES} pickle opcodes")
            name = op.name
            if name in ("GLOBAL", "INST"):
                check_global(*arg.split(" ", 1))
            if name == "MARK":
                marks.append(len(stack))
            elif name in _CONTAINER_FROM_MARK or name == "POP_MARK":
                at = marks.pop()
                items, stack[at:] = stack[at:], []
                if name != "POP_MARK":
                    stack.append([1 + max((c[0] for c in items), default=0)])
            elif name in _EXTEND:
                at = marks.pop() if name in ("APPENDS", "SETITEMS", "ADDITEMS") else len(stack) - (
                    1 if name == "APPEND" else 2)
                items, stack[at:] = stack[at:], []
                stack[-1][0] = max(stack[-1][0], 1 + max((c[0] for c in items), default=0))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD", "BINPERSID",
                          "STACK_GLOBAL"):
                n = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "NEWOBJ_EX": 3, "BINPERSID": 1}.get(name, 2)
                items, stack[-n:] = stack[-n:], []
                depth = 0 if name == "STACK_GLOBAL" else 1 + max(c[0] for c in items)
                stack.append(items[0] if name == "BUILD" else [depth])
                if name == "BUILD":
                    items[0][0] = max(items[0][0], depth)
            elif name == "POP":
                stack.pop()
            elif name == "DUP":
                stack.append(stack[-1])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name == "STOP":
                break
            elif op.stack_after:
                stack.append([1 if name.startswith("EMPTY_") else 0])
            if stack and stack[-1][0] > MAX_DEPTH:
                raise _Refused(f"objects nested more than {MAX_DEPTH} deep")
    except (ValueError, IndexError, KeyError) as exc:
        raise _Refused(f"not a valid pickle ({exc})") from None
    f.seek(start)


class PlainDType:
    """A numpy dtype from PLAIN_DTYPES, as `numpy.dtype(code, align, copy)` is unpickled; BUILD may only confirm
    the plain state (no sub-array, names, fields, explicit size or alignment, flags)."""

    def __init__(self, code: Any, align: Any = False, copy: Any = False):
        if not isinstance(code, str) or code.lstrip("<>|=") not in PLAIN_DTYPES:
            raise _Refused(f"numpy dtype {code!r} is not a plain numeric type")
        self.numpy = np.dtype(code.lstrip("<>|="))

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", "|", "=")
                and state[2:] == (None, None, None, -1, -1, 0)):
            raise _Refused(f"numpy dtype state {str(state)[:80]} is not that of a plain little-endian type")


def plain_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar reconstructor for PlainDType only, from exactly its item size in bytes."""
    if not isinstance(dtype, PlainDType) or not isinstance(data, bytes) or len(data) != dtype.numpy.itemsize:
        raise _Refused("numpy scalar of an unsupported type or size")
    return np.frombuffer(data, dtype=dtype.numpy)[0].item()


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not (isinstance(value, (tuple, list, torch.Size)) and len(value) <= MAX_DIMS
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise _Refused(f"tensor {what} {str(value)[:60]} is not a short tuple of non-negative integers")
    return tuple(value)


def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                   hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2`, checked: a tensor must be a view inside its storage with no more
    elements than the storage holds from its offset (no stride-0 or overlapping expansion)."""
    if not isinstance(storage, torch.TypedStorage):
        raise _Refused(f"a {type(storage).__name__} stands where a tensor's storage belongs")
    if metadata is not None and (not isinstance(metadata, dict) or metadata):
        raise _Refused("tensor metadata is not an empty dict")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride) or not isinstance(offset, int) or offset < 0:
        raise _Refused("tensor size, stride and offset do not fit together")
    numel = math.prod(size)
    available = storage.size() - offset
    if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.size():
        raise _Refused(f"a tensor of size {size} reaches past its storage of {storage.size()} elements")
    if numel > available:
        raise _Refused(f"a tensor of {numel} elements expands a storage of {available} (stride 0 or overlap)")
    tensor = torch.empty((0,), dtype=storage.dtype)
    return tensor.set_(storage._untyped_storage, offset, size, stride)


def rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None, state: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _Refused(f"a {type(data).__name__} stands where a parameter's tensor belongs")
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `allowed` globals (module, name) → object; refuses anything else by name."""

    def __init__(self, f: BinaryIO, allowed: dict[tuple[str, str], Any], hint: Callable[[str], str | None] | None,
                 persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(f)
        self.allowed, self.hint, self._persistent = allowed, hint, persistent_load

    def find_class(self, module: str, name: str) -> Any:
        target = self.allowed.get((module, name))
        if target is not None:
            return target
        raise _Refused((self.hint and self.hint(module)) or
                       f"refusing to load: the pickle references the global '{module}.{name}', which this "
                       "checkpoint format never contains (nothing from the file was executed)")

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise _Refused("refusing to load: unexpected persistent id in the pickle")
        return self._persistent(pid)


def load_pickle(f: BinaryIO, end: int, allowed: dict[tuple[str, str], Any],
                hint: Callable[[str], str | None] | None = None,
                persistent_load: Callable[[Any], Any] | None = None) -> Any:
    """Scans, then unpickles one pickle from f's position (raises _Refused or the unpickler's errors)."""
    unpickler = RestrictedUnpickler(f, allowed, hint, persistent_load)
    scan(f, end, unpickler.find_class)
    return unpickler.load()


def read_legacy(f: BinaryIO, end: int, allowed: dict[tuple[str, str], Any]) -> Any:
    """A legacy torch stream (magic, protocol, system info, the object pickle, storage keys, then each storage's
    element count and bytes) from f's position to `end`; storages are CPU tensors' storages."""
    plain: dict[tuple[str, str], Any] = {}
    if load_pickle(f, end, plain) != LEGACY_MAGIC or load_pickle(f, end, plain) != LEGACY_PROTOCOL:
        raise _Refused("not a legacy torch stream (bad magic number or protocol)")
    info = load_pickle(f, end, plain)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise _Refused("legacy torch stream not written on a little-endian machine")
    declared: dict[str, torch.Tensor] = {}

    def storage(pid: Any) -> torch.TypedStorage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[2], str)
                and isinstance(pid[4], int) and not isinstance(pid[4], bool) and pid[4] >= 0 and pid[5] is None):
            raise _Refused(f"unexpected storage record {str(pid)[:80]}")
        dtype = next((d for key, d in STORAGE_DTYPES.items() if allowed.get(key) is pid[1]), None)
        if dtype is None:
            raise _Refused("a storage record names no known storage type")
        if pid[2] not in declared:
            nbytes = pid[4] * torch.empty((), dtype=dtype).element_size()
            pending = sum(t.nbytes + 8 for t in declared.values())
            if nbytes + 8 + pending > end - f.tell():
                raise _Refused(f"a storage of {nbytes} bytes is declared where fewer remain in the file")
            declared[pid[2]] = torch.empty(pid[4], dtype=dtype)
        data = declared[pid[2]]
        return torch.TypedStorage(wrap_storage=data.untyped_storage(), dtype=data.dtype, _internal=True)

    obj = load_pickle(f, end, allowed, persistent_load=storage)
    keys = load_pickle(f, end, plain)
    if not isinstance(keys, list) or sorted(keys) != sorted(declared):
        raise _Refused("the storage keys do not match the storages the stream declared")
    for key in keys:
        data = declared[key]
        header = f.read(8)
        if len(header) != 8 or struct.unpack("<q", header)[0] != data.numel():
            raise _Refused("a storage's element count differs from its declaration")
        if data.numel() and f.readinto(memoryview(data.view(torch.uint8).numpy())) != data.nbytes:
            raise _Refused("the file ends inside a storage")
    return obj


def nested_legacy_loader(allowed: dict[tuple[str, str], Any]) -> Callable[[bytes], torch.TypedStorage]:
    """`torch.storage._load_from_bytes` for snapshots: the bytes are a legacy stream holding one storage."""

    def load(data: Any) -> torch.TypedStorage:
        if not isinstance(data, bytes):
            raise _Refused("nested storage is not a byte string")
        result = read_legacy(io.BytesIO(data), len(data), allowed)
        if not isinstance(result, torch.TypedStorage):
            raise _Refused("nested storage stream does not hold a storage")
        return result

    return load


TENSOR_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    **{key: type(key[1], (), {}) for key in STORAGE_DTYPES},
}
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "scalar"): plain_scalar,
    ("numpy._core.multiarray", "scalar"): plain_scalar,
    ("numpy", "dtype"): PlainDType,
}


def refusing(source: str, action: Callable[[], Any]) -> Any:
    """Runs `action`; any violation or malformed structure becomes one InputError naming `source`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return action()
    except InputError:
        raise
    except _Refused as exc:
        raise InputError(source, str(exc)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            RuntimeError, OverflowError, struct.error, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise InputError(source, f"corrupt or malformed pickle ({summary(exc)})") from None
