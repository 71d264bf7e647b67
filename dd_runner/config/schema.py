"""Structured config schemas: the contract of `dd-run`.

Each config group has a dataclass schema here, registered in Hydra's ConfigStore as `base_<group>`.
The YAML options under `conf/<group>/` extend it (`defaults: [base_<group>]`), so a misspelt key or a
value of the wrong type is an error naming the valid keys instead of a silently ignored setting.
Semantic checks that span fields (ranges, impossible combinations) live in `dd_runner.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DatasetConfig:
    name: str = MISSING  # what the run is called in artefacts and on W&B
    loader: str = MISSING  # registered loader function (dd_runner.data.LOADERS)
    task: str = "classification"  # classification | language_modeling
    modality: str = "image"  # image | text: decides the synthetic space and the artefact view
    hub_name: Optional[str] = None  # hub id used when no local files are given
    root: Optional[str] = None  # local folder (images: idx files, torchvision layout or flat)
    data_files: Optional[Any] = None  # local text files: a path, a list, or {split: path}
    split_seed: Optional[int] = None  # shuffle each source split with this seed before slicing
    train_split: str = "train[:90%]"  # Hugging Face slice syntax, e.g. 'test[:8000]'
    val_split: str = "train[90%:]"  # carved from training data: used for model selection
    test_split: str = "test"  # touched only for the reported figures
    num_classes: Optional[int] = None
    class_names: List[str] = field(default_factory=list)
    image_shape: List[int] = field(default_factory=list)  # C, H, W
    mean: List[float] = field(default_factory=list)  # per-channel normalisation
    std: List[float] = field(default_factory=list)
    max_length: int = 64  # text: tokens per real example
    text_column: str = "text"
    label_column: str = "label"
    min_length: int = 0  # language modelling: drop shorter examples (tokens)


@dataclass
class ModelConfig:
    name: str = MISSING
    arch: str = MISSING  # registered builder (dd_runner.models.ARCHS)
    modality: str = "image"  # image | text: which datasets the model can take
    weight_init: str = "xavier"  # the distribution p(theta) networks are drawn from: xavier | kaiming | default
    name_or_path: Optional[str] = None  # hub id or local directory of a pretrained transformer
    tokenizer: Optional[str] = None  # hub id or local directory; defaults to name_or_path
    pretrained: bool = True  # transformers: load pretrained body weights (false: random weights)
    config_overrides: Dict[str, Any] = field(default_factory=dict)  # e.g. {n_layers: 2, dim: 32}
    dropout: Optional[float] = None  # override the model's dropout (inner loops usually use 0)
    trust_remote_code: bool = False


@dataclass
class InitConfig:
    mode: str = MISSING  # fixed | random | pretrained
    checkpoint: Optional[str] = None  # pretrained: safetensors file written by `dd-run mode=train`
    resample: List[str] = field(default_factory=list)  # pretrained: parameter-name prefixes redrawn per net


@dataclass
class LabelsConfig:
    type: str = MISSING  # hard | soft | unrestricted
    init_scale: float = 1.0  # learned labels start at init_scale * one_hot


@dataclass
class MethodConfig:
    name: str = MISSING  # registered method (dd_runner.methods.METHODS)


@dataclass
class LoggerConfig:
    name: str = MISSING  # wandb | none
    project: str = "dd-runner"
    entity: Optional[str] = None
    mode: str = "offline"  # offline | online | disabled
    group: Optional[str] = None  # default: the sweep directory's name in a multirun
    tags: List[str] = field(default_factory=list)
    log_every: int = 10  # outer iterations between logged points


@dataclass
class DistillConfig:
    steps: int = 10  # inner GD steps per epoch, each with its own batch of synthetic data
    epochs: int = 3  # passes over those steps (lrs are not tied across epochs: steps x epochs of them)
    ipc: int = 1  # synthetic examples per class per step
    iterations: int = 1000  # outer optimisation iterations
    lr: float = 0.01  # outer Adam lr
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])
    init_lr: float = 0.02  # initial inner step size
    learn_lr: bool = True
    batch_size: int = 1024  # real examples per outer step
    sample_nets: int = 1  # initialisations per outer step
    accumulate_loss: bool = False  # sum the real loss after every inner step
    clip_grad: Optional[float] = None  # max norm of the meta-gradient
    decay_every: Optional[int] = None  # StepLR period in iterations (None: a tenth of the run)
    decay_factor: float = 0.5
    engine: str = "unroll"  # unroll | recompute | vmap | vmap_recompute (vmap: sampled nets batched)
    recompute_every: int = 0  # recompute engines: keep every k-th step's parameters (0: all)
    vmap_chunk: int = 0  # vmap engines: nets unrolled together, bounds memory (0: all sample_nets)
    real_chunk: int = 0  # recompute engines: real examples per forward of the real loss (0: whole batch)
    init_from: str = "noise"  # noise | real
    seq_len: int = 16  # text: tokens per synthetic sequence


@dataclass
class EvalConfig:
    nets: int = 20  # unseen initialisations evaluated (random / pretrained init)
    baselines: List[str] = field(default_factory=lambda: ["random_real", "class_mean", "kmeans", "full_data"])
    batch_size: int = 1024  # examples per forward pass at test time (shared by the nets evaluated together)
    every: Optional[int] = None  # validation every n iterations (None: ten times per run; 0: never)
    val_nets: int = 4  # nets for each validation point (random / pretrained init)
    select: str = "best"  # best | last: which distilled set to keep (by validation accuracy)
    lr_grid: List[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
    tune_nets: int = 2  # nets per lr when tuning a baseline's fixed lr on the validation split
    full_data_nets: int = 1  # networks trained on the full training split for the ceiling


@dataclass
class TrainConfig:
    """Ordinary training on the full training split (`mode=train` and the full_data baseline)."""

    epochs: int = 5
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    batch_size: int = 128
    weight_decay: float = 0.0


@dataclass
class CheckpointConfig:
    every: int = 100  # outer iterations between checkpoints (0: only on SIGTERM / SIGINT)


@dataclass
class Config:
    mode: str = "distill"  # distill | train
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast of forward passes)
    deterministic: bool = False  # torch.use_deterministic_algorithms (CUDA: slower, bit-reproducible)
    output_dir: Optional[str] = None  # default: Hydra's run directory
    resume: Optional[str] = None  # a run directory to continue (its config, plus explicit overrides)
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    init: InitConfig = MISSING
    labels: LabelsConfig = MISSING
    method: MethodConfig = MISSING
    logger: LoggerConfig = MISSING
    distill: DistillConfig = field(default_factory=DistillConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


GROUP_SCHEMAS = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "init": InitConfig,
    "labels": LabelsConfig,
    "method": MethodConfig,
    "logger": LoggerConfig,
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name=f"base_{group}", node=schema)


register_configs()
