"""Read what an offline W&B run wrote: the records of `<run dir>/wandb/offline-run-*/run-*.wandb`.

wandb >= 0.19 has no Python reader for its transaction log, so this is one: a LevelDB-style log (a 7-byte
file header, then 32 KiB blocks of records, each with a 7-byte header: crc32c, length, type FULL / FIRST
/ MIDDLE / LAST) of protobuf `Record`s.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, Iterator, List

BLOCK, HEADER = 32768, 7


def records(path: Path) -> Iterator["object"]:
    from wandb.proto import wandb_internal_pb2 as pb

    buf = Path(path).read_bytes()
    assert buf[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, parts = HEADER, b""
    while pos + HEADER <= len(buf):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos:pos + HEADER])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            pos += left
            continue
        if pos + HEADER + length > len(buf):  # still being written
            break
        data = buf[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts + data if kind == 4 else data)
            parts = b""
            yield record
        else:
            parts = data if kind == 2 else parts + data


def offline_run(run_dir: Path) -> Path:
    found = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert found, f"no offline W&B run under {run_dir}/wandb"
    return found[-1]


def by_type(run_dir: Path, wait: float = 60.0) -> Dict[str, List]:
    """The run's records by type. W&B's service writes the log asynchronously, so this waits (up to `wait`
    seconds) for the run's exit record, which comes last."""
    import time

    deadline = time.time() + wait
    while True:
        out: Dict[str, List] = {}
        for r in records(offline_run(run_dir)):
            kind = r.WhichOneof("record_type")
            out.setdefault(kind, []).append(getattr(r, kind))
        if "exit" in out or time.time() > deadline:
            return out
        time.sleep(0.2)


def history_rows(run_dir: Path) -> List[Dict[str, str]]:
    """Every history row as {dotted key: JSON value}."""
    return [{(i.key or "/".join(i.nested_key)): i.value_json for i in h.item} for h in by_type(run_dir).get("history", [])]
