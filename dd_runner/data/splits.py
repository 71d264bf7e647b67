"""Hugging Face slice syntax (`train`, `train[:90%]`, `test[8000:]`, `a[:10]+b[5%:]`) for any source.

The spec is parsed by `datasets.ReadInstruction`, so it means exactly what it means in
`datasets.load_dataset(split=...)`, and resolved here to row indices of named source splits. That lets
MNIST idx files and local CSVs be carved into train / val / test the same way as hub datasets.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch

from dd_runner.core.errors import ConfigError

ROLES = ("train", "val", "test")


def source_names(spec: str) -> set:
    """Names of the source splits a spec reads: 'train[:90%]+test' -> {'train', 'test'}."""
    return {part.split("[", 1)[0].strip() for part in str(spec).split("+")}


def resolve_split(spec: str, sizes: Mapping[str, int], setting: str) -> Dict[str, torch.Tensor]:
    """Row indices selected by `spec`, per source split: {"test": tensor([...])}."""
    from datasets import ReadInstruction  # heavy import, only when data is loaded

    try:
        instructions = ReadInstruction.from_spec(spec).to_absolute(dict(sizes))
    except (ValueError, AssertionError) as e:
        raise ConfigError(f"{setting}='{spec}' is not a valid split: {e}") from None
    rows: Dict[str, list] = {}
    for ins in instructions:
        rows.setdefault(ins.splitname, []).append(torch.arange(ins.from_, max(ins.from_, ins.to)))
    selected = {name: torch.cat(parts) for name, parts in rows.items()}
    if sum(len(v) for v in selected.values()) == 0:
        raise ConfigError(f"{setting}='{spec}' selects no rows (sources: "
                          + ", ".join(f"{k}={v}" for k, v in sizes.items()) + ")")
    return selected


def resolve_roles(cfg, sizes: Mapping[str, int], permutations: Optional[Mapping[str, torch.Tensor]] = None):
    """Resolve dataset.{train,val,test}_split; refuse overlapping roles (no test leak into training)."""
    resolved = {}
    for role in ROLES:
        setting = f"dataset.{role}_split"
        resolved[role] = resolve_split(getattr(cfg, f"{role}_split"), sizes, setting)
    for i, a in enumerate(ROLES):
        for b in ROLES[i + 1:]:
            for src in set(resolved[a]) & set(resolved[b]):
                common = torch.isin(resolved[a][src], resolved[b][src]).sum().item()
                if common:
                    raise ConfigError(
                        f"dataset.{a}_split and dataset.{b}_split share {common} rows of '{src}': "
                        f"choose disjoint slices, e.g. '{src}[:80%]' and '{src}[80%:]'")
    if permutations:
        # Slices address rows of the permuted source (dataset.split_seed), still disjoint.
        resolved = {r: {s: permutations[s][idx] for s, idx in parts.items()} for r, parts in resolved.items()}
    return resolved


def split_permutations(sizes: Mapping[str, int], seed: Optional[int]) -> Optional[Dict[str, torch.Tensor]]:
    if seed is None:
        return None
    gen = torch.Generator().manual_seed(int(seed))
    return {name: torch.randperm(n, generator=gen) for name, n in sorted(sizes.items())}
