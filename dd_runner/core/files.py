"""Writing files: atomically (a file that exists is complete) and, for safetensors, deterministically.

Every write goes to a temporary file in the same directory, is fsync'ed and renamed over the target.
Under torchrun only rank 0 writes (the writers here do nothing on other ranks).

The safetensors library writes the header's metadata in hash-map order, which changes from process to
process, so two identical runs would not produce byte-identical files. The format is simple (8-byte
little-endian header length, a JSON header, the raw little-endian tensor bytes), so this writer emits it
with sorted keys; the files are read back with the official library (`safetensors.safe_open`).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch

from dd_runner.core import distributed
from dd_runner.core.errors import RunError

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def dumps(tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> bytes:
    if sys.byteorder != "little":  # the format is little-endian; torch's bytes are native
        raise RuntimeError("writing safetensors on a big-endian machine is not supported")
    header: Dict[str, object] = {"__metadata__": {k: str(v) for k, v in sorted(metadata.items())}}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in DTYPES:
            raise TypeError(f"tensor '{name}' has dtype {t.dtype}, which safetensors cannot store")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the tensor data starts 8-byte aligned
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    if not distributed.is_main():  # torchrun: rank 0 alone writes the run directory
        return
    try:
        _atomic_write(Path(path), payload)
    except OSError as e:
        raise RunError(f"cannot write {path}: {e.strerror or e}; free some space or choose another output_dir") from None


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; artefacts are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_tensors(path: Path, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    """A safetensors file, byte-identical for identical inputs (see `dumps`)."""
    atomic_write_bytes(path, dumps(tensors, metadata))
