"""Text datasets through Hugging Face `datasets`: hub ids or local CSV / JSON(L) / text files.

Classification (AG News) keeps a label column; language modelling (english_quotes) keeps only the text.
Every source split (e.g. AG News' `test.csv`) is tokenised once with the model's tokenizer, padded to
`dataset.max_length`, through `Dataset.map` with an explicit fingerprint of (source, tokenizer, settings):
`datasets` caches the result next to its own arrow files, so the next run with the same settings reads
it back instead of tokenising again. The train / val / test roles are then carved from the source splits
with the Hugging Face slice syntax, exactly as for images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import torch

from dd_runner.core.errors import ConfigError, DataError, local_path
from dd_runner.data.bundle import DataBundle, Split
from dd_runner.data.hub import quiet_hub
from dd_runner.data.splits import ROLES, resolve_roles, source_names, split_permutations

log = logging.getLogger(__name__)

BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".txt": "text", ".parquet": "parquet"}


def load_tokenizer(model_cfg):
    """The tokenizer named by model.tokenizer (default: model.name_or_path); causal LMs get pad = eos."""
    from transformers import AutoTokenizer

    name = model_cfg.tokenizer or model_cfg.name_or_path
    if not name:
        raise ConfigError(f"model={model_cfg.name} needs model.tokenizer or model.name_or_path (a hub id or a local directory)")
    try:
        with quiet_hub(name):
            tokenizer = AutoTokenizer.from_pretrained(str(name), trust_remote_code=model_cfg.trust_remote_code)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot load the tokenizer '{name}' ({type(e).__name__}; offline?): set model.tokenizer "
                        "(or model.name_or_path) to a local directory with tokenizer files") from None
    if tokenizer.pad_token is None:  # GPT-style tokenizers: padding is masked out, any id will do
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _data_files(cfg) -> Dict[str, List[str]]:
    """dataset.data_files as {source split: [paths]}; a bare path or list is the 'train' split."""
    from omegaconf import OmegaConf

    files = OmegaConf.to_container(cfg.data_files, resolve=True) if OmegaConf.is_config(cfg.data_files) else cfg.data_files
    if isinstance(files, (str, Path)):
        files = {"train": [files]}
    elif isinstance(files, list):
        files = {"train": files}
    files = {split: [str(Path(p).expanduser()) for p in (paths if isinstance(paths, list) else [paths])]
             for split, paths in files.items()}
    for paths in files.values():
        for p in paths:
            if not Path(p).is_file():
                raise DataError(f"dataset.data_files names {local_path(p)}, which does not exist")
            if Path(p).stat().st_size < 4096 and not Path(p).read_bytes().strip():
                raise DataError(f"dataset.data_files names {local_path(p)}, which is empty: check the file")
    return files


def _load_sources(cfg, wanted: set):
    """{source split: datasets.Dataset} for the source splits the split specs read."""
    import datasets

    if cfg.data_files:
        files = _data_files(cfg)
        missing = wanted - set(files)
        if missing:
            raise ConfigError(f"the dataset.*_split settings read {sorted(missing)} but dataset.data_files only has "
                              f"{sorted(files)}: carve every split from those, e.g. dataset.train_split='{next(iter(files))}[:90%]'")
        suffix = Path(next(iter(files.values()))[0]).suffix.lower()
        if suffix not in BUILDERS:
            raise DataError(f"dataset.data_files: cannot read '{suffix}' files; use {', '.join(BUILDERS)}")
        kwargs = {"column_names": list(cfg.columns)} if cfg.columns and BUILDERS[suffix] == "csv" else {}
        if suffix == ".tsv":
            kwargs["sep"] = "\t"
        paths = ", ".join(p for s in sorted(wanted) for p in files[s])
        try:
            with quiet_hub():
                loaded = datasets.load_dataset(BUILDERS[suffix], data_files={s: files[s] for s in wanted}, **kwargs)
        except Exception as e:  # pyarrow / pandas parse errors, wrapped by datasets: report the innermost
            while e.__cause__ is not None or e.__context__ is not None:
                e = e.__cause__ or e.__context__
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise DataError(f"cannot read {paths} as {BUILDERS[suffix]} ({type(e).__name__}: {first}): check the file, "
                            "or point dataset.data_files elsewhere") from None
        return {s: loaded[s] for s in wanted}, paths
    if not cfg.hub_name:
        raise ConfigError(f"dataset={cfg.name} needs dataset.hub_name or dataset.data_files")
    try:
        with quiet_hub(cfg.hub_name):
            loaded = datasets.load_dataset(cfg.hub_name)
    except (ConnectionError, OSError) as e:
        raise DataError(f"cannot download '{cfg.hub_name}' from the Hugging Face hub ({type(e).__name__}); set "
                        f"dataset.data_files to local files (see dataset={cfg.name}_offline)") from None
    missing = wanted - set(loaded)
    if missing:
        raise ConfigError(f"'{cfg.hub_name}' has no split {sorted(missing)} (it has {sorted(loaded)}): fix the dataset.*_split settings")
    return {s: loaded[s] for s in wanted}, f"hub:{cfg.hub_name}"


def _tokenizer_fingerprint(tokenizer) -> str:
    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return Hasher.hash([type(tokenizer).__name__, spec, tokenizer.pad_token_id, tokenizer.padding_side])


def _class_ids(values, offset: int, column: str, origin: str) -> List[int]:
    """Integer classes of a label column. A value that is not a whole number (text, an empty cell, 2.5) is
    refused: int() would quietly truncate 2.5 to class 2."""
    ids = []
    for value in values:
        try:
            number = float(value) if not isinstance(value, (int, str)) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError(value)
            ids.append(int(number) - offset)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"column '{column}' of {origin} holds {str(value)[:40]!r}, not an integer class: check "
                            "the file, or dataset.label_column / dataset.columns") from None
    return ids


def _tokenised(ds, cfg, tokenizer, tokenizer_id: str, classification: bool, origin: str):
    """input_ids / attention_mask (/ label) columns, cached by datasets under an explicit fingerprint."""
    from datasets.fingerprint import Hasher

    text_columns = [c.strip() for c in cfg.text_column.split("+")]
    needed = text_columns + ([cfg.label_column] if classification else [])
    absent = [c for c in needed if c not in ds.column_names]
    if absent:
        hint = " (header-less CSV: name its columns with dataset.columns)" if not cfg.columns else ""
        raise DataError(f"column(s) {absent} not in {origin} (it has {ds.column_names}): set dataset.text_column / "
                        f"dataset.label_column{hint}")
    offset, max_length = int(cfg.label_offset), int(cfg.max_length)

    def encode(batch):
        texts = [" ".join(str(v or "") for v in parts).strip() for parts in zip(*(batch[c] for c in text_columns))]
        out = tokenizer(texts, max_length=max_length, truncation=True, padding="max_length")
        result = {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}
        if classification:
            result["label"] = _class_ids(batch[cfg.label_column], offset, cfg.label_column, origin)
        return result

    fingerprint = Hasher.hash([ds._fingerprint, tokenizer_id, cfg.text_column, cfg.label_column if classification else None,
                               offset, max_length, "dd-runner-text-v1"])
    return ds.map(encode, batched=True, remove_columns=ds.column_names, new_fingerprint=fingerprint,
                  desc=f"tokenising {cfg.name}")


def load_text(cfg, model_cfg=None) -> DataBundle:
    if model_cfg is None:
        raise ConfigError(f"dataset={cfg.name} is text: it needs a model (and its tokenizer)")
    classification = cfg.task == "classification"
    tokenizer = load_tokenizer(model_cfg)
    specs = {role: getattr(cfg, f"{role}_split") for role in ROLES}
    wanted = set().union(*(source_names(spec) for spec in specs.values()))
    sources, origin = _load_sources(cfg, wanted)
    tokenizer_id = _tokenizer_fingerprint(tokenizer)
    empty = [s for s, ds in sources.items() if len(ds) == 0]
    if empty:
        raise DataError(f"{origin} holds no rows for split {empty[0]!r}: check the file, or point dataset.data_files elsewhere")
    encoded = {s: _tokenised(ds, cfg, tokenizer, tokenizer_id, classification, origin).with_format("torch")
               for s, ds in sources.items()}
    sizes = {s: len(ds) for s, ds in encoded.items()}
    rows = resolve_roles(cfg, sizes, split_permutations(sizes, cfg.split_seed))

    def build(role: str) -> Split:
        parts = [encoded[s].select(idx.tolist())[:] for s, idx in rows[role].items()]  # column -> tensor dicts
        ids = torch.cat([p["input_ids"] for p in parts]).long()
        mask = torch.cat([p["attention_mask"] for p in parts]).long()
        labels = torch.cat([p["label"] for p in parts]).long() if classification else None
        split = Split(inputs=ids, labels=labels, mask=mask)
        if not classification and cfg.min_length:  # too short to predict anything from
            split = split.select(torch.nonzero(mask.sum(1) >= cfg.min_length).flatten())
        if len(split) == 0:
            raise DataError(f"dataset.{role}_split has no examples with at least dataset.min_length={cfg.min_length} tokens")
        return split

    splits = {role: build(role) for role in ROLES}
    num_classes = None
    if classification:
        num_classes = cfg.num_classes or int(max(int(s.labels.max()) for s in splits.values()) + 1)
        for role, split in splits.items():
            low, high = int(split.labels.min()), int(split.labels.max())
            if low < 0 or high >= num_classes:
                fix = (f"raise dataset.num_classes (now {cfg.num_classes}) or leave it null (one more than the largest "
                       "label), or check" if cfg.num_classes and low >= 0 else "check")
                raise DataError(f"{role} labels of {origin} span {low}..{high} but dataset.num_classes={num_classes}: "
                                f"{fix} dataset.label_column and dataset.label_offset (now {cfg.label_offset})")
    log.info("%s from %s: train %d, val %d, test %d (max_length %d)", cfg.name, origin,
             *(len(splits[r]) for r in ROLES), cfg.max_length)
    return DataBundle(
        name=cfg.name, task=cfg.task, modality="text", num_classes=num_classes,
        class_names=(list(cfg.class_names) or [str(c) for c in range(num_classes)]) if classification else [],
        example_shape=(int(cfg.max_length),), tokenizer=tokenizer, source=origin, **splits)
