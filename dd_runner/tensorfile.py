"""Deterministic safetensors files.

The safetensors library writes the header's metadata in hash-map order, which changes from process to
process, so two identical runs would not produce byte-identical files. The format is simple (8-byte
little-endian header length, a JSON header, the raw little-endian tensor bytes), so this writer emits it
with sorted keys; the files are read back with the official library (`safetensors.safe_open`).
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Dict

import torch

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
