"""Reading and writing the files of a run: reads that fail name the file, writes that are atomic (a file
that exists is complete) and, for safetensors, deterministic.

Every file dd-run, dd-report and dd-export read back (config.yaml, metrics.json, failure.json,
overrides.yaml, checkpoints, weights) goes through `read_json` / `read_yaml` / `read_safetensors` /
`safetensors_metadata`: a missing, truncated or garbled file is one `DataError` naming its path and what
to do about it, instead of a parser's traceback deep inside a run.

Every write goes to a temporary file in the same directory, is fsync'ed and renamed over the target.
Under torchrun only rank 0 writes (the writers here do nothing on other ranks).

The safetensors library writes the header's metadata in hash-map order, which changes from process to
process, so two identical runs would not produce byte-identical files. The format is simple (8-byte
little-endian header length, a JSON header, the raw little-endian tensor bytes), so this writer emits it
with sorted keys; the files are read back with the official library (`safetensors.safe_open`).
"""

from __future__ import annotations

import errno
import json
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from dd_runner.core import distributed
from dd_runner.core.errors import DataError, RunError

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
        raise RunError(f"cannot write {path}: {write_failure(e)}") from None


def write_failure(error: OSError, setting: str = "output_dir") -> str:
    """What an OSError of a write means for the user, and the remedy that can help: a full disk needs
    space, a read-only or forbidden directory needs another place (`setting`)."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        return f"{reason}; free some space or choose another {setting}"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{reason} (the directory is not writable); choose another {setting}"
    return f"{reason}; choose another {setting}"


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


# --- reading back -----------------------------------------------------------------------------------------
def _unreadable(path, what: str, error: BaseException, hint: str, setting: str = "") -> DataError:
    reason = " ".join(str(error).split()) or type(error).__name__
    shown = f"{setting}={path}" if setting else str(path)
    return DataError(f"{shown} is not {what} ({type(error).__name__}: {reason[:200]})" + (f"; {hint}" if hint else ""))


def read_json(path, hint: str = "", expect: type = dict) -> Any:
    """The JSON value in `path` (a `expect`, e.g. a dict); DataError naming the file if it is missing,
    unreadable, cut short or of another kind."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _unreadable(path, "a readable JSON file", e, hint) from None
    if not isinstance(value, expect):
        raise DataError(f"{path} holds a JSON {type(value).__name__}, not a {expect.__name__}" + (f"; {hint}" if hint else ""))
    return value


def read_yaml(path, hint: str = ""):
    """The YAML in `path` as an OmegaConf container; DataError naming the file if it cannot be parsed."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(str(path))
    except Exception as e:  # yaml's ScannerError / ParserError, OmegaConf's errors, OSError, UnicodeDecodeError
        raise _unreadable(path, "a readable YAML file", e, hint) from None


def safetensors_metadata(path, hint: str = "", setting: str = "") -> Dict[str, str]:
    """The header metadata of a safetensors file without reading its tensors. Opening it checks the header
    and that the file covers every tensor's bytes, so a truncated file is found here, not mid-run."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise _unreadable(path, "a readable safetensors file", e, hint, setting) from None


def safetensors_shapes(path, hint: str = "", setting: str = "") -> Dict[str, Tuple[int, ...]]:
    """Every tensor's shape, read from the header alone (no tensor data): checks files before a run uses them."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise _unreadable(path, "a readable safetensors file", e, hint, setting) from None


def read_safetensors(path, hint: str = "", setting: str = "") -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(tensors, header metadata) of a safetensors file; DataError naming the file (as `setting`=path when
    a setting points at it) if it cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise _unreadable(path, "a readable safetensors file", e, hint, setting) from None


def header_int(meta: Dict[str, str], key: str, path, hint: str = "", minimum: Optional[int] = 0) -> int:
    """An integer entry of a safetensors header (e.g. a checkpoint's iteration), checked: DataError naming
    the file if it is absent, not an integer, or below `minimum`."""
    value = meta.get(key)
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        number = None
    if number is None or (minimum is not None and number < minimum):
        raise DataError(f"{path} has {key}={value!r} in its header, not an integer >= {minimum}: the file was changed "
                        "after dd-run wrote it" + (f"; {hint}" if hint else ""))
    return number
