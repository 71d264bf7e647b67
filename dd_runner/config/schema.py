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
    download: bool = True  # images: fetch missing files into root (torchvision); the *_offline datasets never do
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
    text_column: str = "text"  # text: a column, or columns joined with a space: 'title+description'
    label_column: str = "label"
    min_length: int = 0  # language modelling: drop shorter examples (tokens)
    columns: List[str] = field(default_factory=list)  # names of the columns of header-less CSV files
    label_offset: int = 0  # subtracted from the labels in local files (AG News counts classes from 1)


@dataclass
class ModelConfig:
    name: str = MISSING
    arch: str = MISSING  # registered builder (dd_runner.models.ARCHS)
    modality: str = "image"  # image | text: which datasets the model can take
    weight_init: str = "xavier"  # the distribution p(theta) networks are drawn from: xavier | kaiming | default
    width: int = 128  # convnet: channels per conv layer; mlp: units per hidden layer
    depth: int = 3  # convnet: conv blocks
    norm: Optional[str] = None  # alexnet, vgg11, resnet18: instance | batch | none (their YAML sets the papers')
    name_or_path: Optional[str] = None  # hub id or local directory of a pretrained transformer
    tokenizer: Optional[str] = None  # hub id or local directory; defaults to name_or_path
    pretrained: bool = True  # transformers: load pretrained body weights (false: random weights)
    config_overrides: Dict[str, Any] = field(default_factory=dict)  # e.g. {n_layers: 2, dim: 32}
    dropout: Optional[float] = None  # override the model's dropout (inner loops usually use 0)
    trust_remote_code: bool = False
    # transformers: the config of name_or_path (model_type + fields) for random weights without its config.json
    architecture: Dict[str, Any] = field(default_factory=dict)


@dataclass
class InitConfig:
    mode: str = MISSING  # fixed | random | pretrained
    checkpoint: Optional[str] = None  # pretrained: safetensors file written by `dd-run mode=train`
    resample: List[str] = field(default_factory=list)  # pretrained: parameter-name prefixes redrawn per net


@dataclass
class LabelsConfig:
    type: str = MISSING  # hard | soft | unrestricted | teacher
    init_scale: float = 1.0  # learned labels start at init_scale * one_hot
    attention: str = "none"  # text classifiers: learned attention labels for the first token (cls) or all tokens
    attention_weight: float = 1.0  # weight of their KL term in the inner loss
    teacher: Optional[str] = None  # teacher: a model.safetensors of `dd-run mode=train` (same model config)
    temperature: float = 4.0  # teacher: softmax temperature T of both teacher and student
    alpha: float = 0.9  # teacher: weight of alpha * T^2 * KL(teacher_T || student_T) vs (1 - alpha) * CE(hard)


@dataclass
class AugmentConfig:
    """Differentiable Siamese Augmentation (Zhao & Bilen 2021): one transform per matching step, the same
    for the real and the synthetic batch."""

    name: str = MISSING  # none | dsa
    strategy: str = "color_crop_cutout_scale_rotate"  # transforms to draw from ('_'-separated; + flip)
    scale: float = 1.2
    rotate: float = 15.0  # degrees
    crop: float = 0.125  # translation, fraction of the size
    cutout: float = 0.5  # hole size, fraction of the size
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclass
class MethodConfig:
    name: str = MISSING  # registered method (dd_runner.methods.METHODS)


@dataclass
class GradientMatchingConfig(MethodConfig):
    outer_loop: int = 1  # synthetic updates per sampled network (DC: 1 for 1 ipc, 10 for 10 ipc)
    inner_loop: int = 1  # epochs of network training on the synthetic set between them (DC: 1 / 50)
    lr_net: float = 0.01  # SGD lr of that network training
    batch_real: int = 256  # real examples per class per matching step
    distance: str = "layerwise"  # layerwise: DC's per-output-unit cosine distance | mse


@dataclass
class DistributionMatchingConfig(MethodConfig):
    batch_real: int = 256  # real examples per class per matching step


@dataclass
class TrajectoryMatchingConfig(MethodConfig):
    experts: Optional[str] = None  # a directory written by `dd-run mode=experts` (expert_*.safetensors)
    expert_epochs: int = 2  # M: the target is the expert M epochs after the start
    max_start_epoch: int = 5  # start epochs are drawn from [0, max_start_epoch)


@dataclass
class LoggerConfig:
    name: str = MISSING  # wandb | none
    project: str = "dd-runner"
    entity: Optional[str] = None
    mode: str = "offline"  # offline | online | disabled
    group: Optional[str] = None  # default: the sweep directory's name in a multirun
    tags: List[str] = field(default_factory=list)
    log_every: int = 10  # outer iterations between logged points
    log_checkpoints: bool = False  # the resume checkpoint as a W&B artifact (type checkpoint) at every save


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
    optimizer: str = "adam"  # outer optimiser: adam (betas) | sgd (momentum)
    momentum: float = 0.5  # sgd only
    lr_lr: Optional[float] = None  # outer lr of the learned step sizes (None: distill.lr)
    shared_lr: bool = False  # one learned step size for every unrolled step (trajectory matching)
    clip_grad: Optional[float] = None  # max norm of the meta-gradient
    decay_every: Optional[int] = None  # StepLR period in iterations (None: a tenth of the run)
    decay_factor: float = 0.5
    average: Optional[float] = None  # EMA decay of a running average of the set, validated beside it (None: off)
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
    snapshots: bool = True  # the set at every validation point: snapshots/<iteration>.safetensors, evolution.png, W&B media
    lr_grid: List[float] = field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0])
    tune_nets: int = 2  # nets per lr when tuning a baseline's fixed lr on the validation split
    full_data_nets: int = 1  # networks trained on the full training split for the ceiling
    schedule: str = "distilled"  # distilled: steps x epochs GD steps with the set's lrs | train: see below
    train_epochs: Optional[int] = None  # schedule=train: epochs of minibatch SGD over the set (None: 1000 with
    # eval.augment=dsa, the papers' DSA protocol, else 300)
    train_batch: int = 256  # schedule=train: minibatch size
    train_momentum: float = 0.9  # schedule=train: SGD momentum (the lr is tuned on validation)
    train_weight_decay: float = 0.0005
    augment: Optional[str] = None  # none | dsa: transforms of the sets while networks train on them (None: augment.name)
    models: List[str] = field(default_factory=list)  # model options the set is also evaluated on (columns)
    cross_baselines: bool = False  # evaluate the baselines on eval.models too
    compile: bool = False  # torch.compile the test passes of evaluation (forward only; never the meta-gradient's path)


@dataclass
class TrainConfig:
    """Ordinary training on the full training split (`mode=train` and the full_data baseline)."""

    epochs: int = 5
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9  # sgd only
    batch_size: int = 128
    weight_decay: float = 0.0


@dataclass
class ExpertsConfig:
    """`dd-run mode=experts`: expert trajectories for trajectory matching (Cazenavette et al. 2022)."""

    count: int = 5  # experts, each from its own random initialisation
    epochs: int = 10  # epochs per expert; parameters are saved after each (and at the start)
    lr: float = 0.01  # SGD, as MTT's teachers
    momentum: float = 0.0
    batch_size: int = 256


@dataclass
class CheckpointConfig:
    every: int = 100  # outer iterations between checkpoints (0: only on SIGTERM / SIGINT)


@dataclass
class Config:
    mode: str = "distill"  # distill | baselines (eval.baselines alone, at the distill.* budget) | train | experts
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
    augment: AugmentConfig = MISSING
    logger: LoggerConfig = MISSING
    distill: DistillConfig = field(default_factory=DistillConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)


GROUP_SCHEMAS = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "init": InitConfig,
    "labels": LabelsConfig,
    "method": MethodConfig,
    "logger": LoggerConfig,
    "augment": AugmentConfig,
}
METHOD_SCHEMAS = {
    "gradient_matching": GradientMatchingConfig,
    "distribution_matching": DistributionMatchingConfig,
    "trajectory_matching": TrajectoryMatchingConfig,
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name=f"base_{group}", node=schema)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="method", name=f"base_{name}", node=schema)


register_configs()
