"""Structured config schemas: the contract of `dd-run`, and the one place each setting is described.

Each config group has a dataclass schema (dd_runner/config/schema_groups.py), registered in Hydra's ConfigStore as `base_<group>`. The
YAML options under `conf/<group>/` extend it (`defaults: [base_<group>]`), so a misspelt key or a value
of the wrong type is an error naming the valid keys instead of a silently ignored setting. Every field is
an `option(default, help, choices=..., bound=...)` (dd_runner/config/fields.py): `dd-run --help GROUP`,
docs/reference/config.md and the validation read the help text, the allowed values and the ranges from
here. Checks that span fields (impossible combinations) live in `dd_runner.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from dd_runner.config.fields import FRACTION, NON_NEGATIVE, POSITIVE, SEED, Bound, Setting, option, settings
from dd_runner.config.schema_groups import (AugmentConfig, DatasetConfig, DistributionMatchingConfig,
                                            GradientMatchingConfig, InitConfig, LabelsConfig, LoggerConfig,
                                            MethodConfig, ModelConfig, TrajectoryMatchingConfig)


@dataclass
class DistillConfig:
    """distill.*: the algorithm's budget and outer optimisation."""

    steps: int = option(10, "Inner gradient steps per epoch, each with its own batch of synthetic data.",
                        bound=POSITIVE)
    epochs: int = option(3, "Passes over those steps; lrs are not tied across epochs (steps x epochs of them).",
                         bound=POSITIVE)
    ipc: int = option(1, "Synthetic examples per class per step.", bound=POSITIVE)
    iterations: int = option(1000, "Outer optimisation iterations.", bound=POSITIVE)
    lr: float = option(0.01, "Outer lr (of the data, the learned lrs and the learned labels).", bound=POSITIVE)
    betas: List[float] = option([0.5, 0.999], "Adam's betas of the outer optimiser (two numbers in [0, 1)).",
                                bound=FRACTION)
    init_lr: float = option(0.02, "Initial inner step size (stored raw as log(expm1(lr)), used as "
                            "softplus(raw)).", bound=POSITIVE)
    learn_lr: bool = option(True, "Learn the inner step sizes with the data (false: they stay at init_lr).")
    batch_size: int = option(1024, "Real examples per outer iteration.", bound=POSITIVE)
    sample_nets: int = option(1, "Initialisations per outer iteration (random / pretrained init); their "
                              "meta-gradients are summed.", bound=POSITIVE)
    accumulate_loss: bool = option(False, "Sum the real loss after every inner step instead of the last only.")
    optimizer: str = option("adam", "Outer optimiser: adam (distill.betas) or sgd (distill.momentum).",
                            choices=("adam", "sgd"))
    momentum: float = option(0.5, "Momentum of the sgd outer optimiser.", bound=FRACTION)
    lr_lr: Optional[float] = option(None, "Outer lr of the learned step sizes (null: distill.lr).",
                                    bound=POSITIVE)
    shared_lr: bool = option(False, "One learned step size for every unrolled step (trajectory matching).")
    clip_grad: Optional[float] = option(None, "Largest norm of the meta-gradient (null: no clipping).",
                                        bound=POSITIVE)
    decay_every: Optional[int] = option(None, "Halve (x decay_factor) the outer lr every this many iterations "
                                        "(null: every tenth of the run).", bound=POSITIVE)
    decay_factor: float = option(0.5, "Factor of each decay of the outer lr.",
                                 bound=Bound("in (0, 1]", lambda v: 0 < v <= 1))
    average: Optional[float] = option(None, "Decay of a running average (EMA) of the set, validated beside the "
                                      "raw set at every check; the better is kept (null: off).",
                                      bound=Bound("in (0, 1) (the running average's decay; null: off)",
                                                  lambda v: 0 < v < 1))
    engine: str = option("unroll", "How the meta-gradient is computed: unroll (autograd through every step), "
                         "recompute (keeps each step's parameters, rebuilds one step's graph at a time: memory "
                         "~ T x params), vmap / vmap_recompute (the same with the sample_nets networks batched "
                         "under torch.func.vmap). All give the same gradient.", choices="dd_runner.engines:ENGINES")
    recompute_every: int = option(0, "Recompute engines: keep every k-th step's parameters and recompute the "
                                  "rest per segment (0: keep all).", bound=NON_NEGATIVE)
    vmap_chunk: int = option(0, "vmap engines: networks unrolled together, bounds their memory (0: all "
                             "sample_nets).", bound=NON_NEGATIVE)
    real_chunk: int = option(0, "Recompute engines: real examples per forward of the real loss (0: the whole "
                             "batch); bounds the largest graph of a step.", bound=NON_NEGATIVE)
    init_from: str = option("noise", "Start the set from noise (N(0, 1) in the normalised space; text: the "
                            "embedding table's statistics) or from real examples of each class.",
                            choices=("noise", "real"))
    seq_len: int = option(16, "Text: tokens per synthetic sequence.", bound=POSITIVE)
    cuda_graph: str = option("auto", "Capture performance matching's whole outer step (unroll, real loss, "
                             "meta-gradient, Adam step) as one CUDA graph after 3 eager warm-up steps and replay "
                             "it with the next real batch and networks copied into static buffers: the step is "
                             "bound by the host's dispatch of thousands of small operations, which a replay "
                             "skips. auto: capture on CUDA when the run allows it (engine unroll or vmap, Adam, "
                             "fp32 or bf16, one process), else run eagerly and log why once; a failed capture "
                             "also falls back to eager. true: capture or stop with the reason. false: eager. "
                             "Not yet verified on a GPU (docs/performance.md).",
                             choices=("auto", "True", "False"))


@dataclass
class EvalConfig:
    """eval.*: how a set and its baselines are judged: networks trained on them, measured on held-out data."""

    nets: int = option(20, "Unseen initialisations evaluated for random / pretrained init (fixed init "
                       "evaluates its one theta_0); the figure is their mean and std.", bound=POSITIVE)
    baselines: List[str] = option(["random_real", "class_mean", "kmeans", "full_data"], "Sets evaluated beside "
                                  "the distilled one at the same budget: random_real, class_mean, kmeans, herding, "
                                  "kcenter, full_data (the ceiling).", choices="dd_runner.eval.baselines:BASELINE_NAMES")
    batch_size: int = option(1024, "Examples per forward pass at test time, shared by the networks evaluated "
                             "together.", bound=POSITIVE)
    every: Optional[int] = option(None, "Validation every n outer iterations (null: ten times per run; 0: "
                                  "never).", bound=NON_NEGATIVE)
    val_nets: int = option(4, "Networks per validation point (random / pretrained init).", bound=POSITIVE)
    select: str = option("best", "Which set to keep: best (by validation accuracy) or last.",
                         choices=("best", "last"))
    snapshots: bool = option(True, "Keep the set at every validation point (snapshots/<iteration>.safetensors, "
                             "evolution.png, W&B media).")
    lr_grid: List[float] = option([0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0], "Fixed lrs tried on the validation "
                                  "split for sets without learned lrs (baselines, eval.schedule=train); one value: "
                                  "used as it is, no tuning.", bound=POSITIVE)
    tune_nets: int = option(2, "Networks per lr when tuning on the validation split.", bound=POSITIVE)
    full_data_nets: int = option(1, "Networks trained on the full training split for the full_data ceiling.",
                                 bound=NON_NEGATIVE)
    schedule: str = option("distilled", "distilled: steps x epochs gradient steps with the set's learned lrs "
                           "(Wang et al.); train: eval.train_epochs epochs of minibatch SGD with momentum and "
                           "weight decay, lr tuned on validation (the DC / DM / MTT protocol).",
                           choices=("distilled", "train"))
    train_epochs: Optional[int] = option(None, "schedule=train: epochs of minibatch SGD over the set (null: 1000 "
                                         "with eval.augment=dsa, the papers' DSA protocol, else 300).",
                                         bound=POSITIVE)
    train_batch: int = option(256, "schedule=train: minibatch size.", bound=POSITIVE)
    train_momentum: float = option(0.9, "schedule=train: SGD momentum.", bound=FRACTION)
    train_weight_decay: float = option(0.0005, "schedule=train: SGD weight decay.", bound=NON_NEGATIVE)
    augment: Optional[str] = option(None, "Transforms of the sets while evaluation networks train on them: none "
                                    "or dsa (null: the method's augment).", choices=("none", "dsa"))
    models: List[str] = option([], "Further model options the set is evaluated on, a column each "
                               "(image models only).", choices="dd_runner.config.model_options:MODEL_OPTIONS")
    cross_baselines: bool = option(False, "Evaluate the baselines on eval.models too.")
    compile: bool = option(False, "torch.compile the test passes of evaluation (forward only; never the "
                           "meta-gradient's path).")


@dataclass
class TrainConfig:
    """train.*: ordinary training on the full training split (`mode=train` and the full_data baseline)."""

    epochs: int = option(5, "Epochs over the training split.", bound=POSITIVE)
    lr: float = option(1e-3, "Learning rate.", bound=POSITIVE)
    optimizer: str = option("adam", "adam or sgd (train.momentum).", choices=("adam", "sgd"))
    momentum: float = option(0.9, "Momentum of sgd.", bound=FRACTION)
    batch_size: int = option(128, "Minibatch size.", bound=POSITIVE)
    weight_decay: float = option(0.0, "Weight decay.", bound=NON_NEGATIVE)


@dataclass
class ExpertsConfig:
    """experts.*: `dd-run mode=experts` trains expert trajectories for trajectory matching (Cazenavette et al.
    2022)."""

    count: int = option(5, "Experts, each from its own random initialisation.", bound=POSITIVE)
    epochs: int = option(10, "Epochs per expert; its parameters are saved at the start and after each.",
                         bound=POSITIVE)
    lr: float = option(0.01, "SGD lr (as MTT's experts).", bound=POSITIVE)
    momentum: float = option(0.0, "SGD momentum.", bound=FRACTION)
    batch_size: int = option(256, "Minibatch size.", bound=POSITIVE)


@dataclass
class CheckpointConfig:
    """checkpoint.*: the resume checkpoint."""

    every: int = option(100, "Outer iterations between checkpoints (0: only on SIGTERM / SIGINT).",
                        bound=NON_NEGATIVE)


@dataclass
class Config:
    """Top-level settings."""

    mode: str = option("distill", "distill; baselines (eval.baselines alone, at the distill.* budget); train "
                       "(ordinary training: the ceiling and a checkpoint for init=pretrained); experts (expert "
                       "trajectories for trajectory matching).", choices=("distill", "baselines", "train", "experts"))
    seed: int = option(0, "Every random draw derives from it and a purpose (networks of iteration i, "
                       "evaluation networks, real batches).", bound=SEED)
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.", choices=("auto", "cpu", "cuda"))
    precision: str = option("fp32", "Autocast of forward passes: fp32, bf16 or fp16 (scales the outer loss); "
                            "synthetic data, lrs and labels stay fp32.", choices=("fp32", "bf16", "fp16"))
    deterministic: bool = option(False, "torch.use_deterministic_algorithms and no TF32 / cuDNN benchmark: "
                                 "bit-reproducible on CUDA, slower.")
    allocator: str = option("auto", "Host memory allocator. auto: on Linux with glibc, raise malloc's mmap and "
                            "trim thresholds at the start of a run, so that the large blocks an outer step "
                            "frees are kept for the next step instead of being unmapped and faulted in again "
                            "(on a CPU: no minor page faults per step, less CPU time: docs/performance.md); "
                            "the resident size then stays near the run's peak. It applies to the whole process from the "
                            "first run that sets it, and does nothing elsewhere or when MALLOC_*_ / "
                            "GLIBC_TUNABLES are set in the environment. system: leave malloc as it is.",
                            choices="dd_runner.core.allocator:ALLOCATORS")
    output_dir: Optional[str] = option(None, "The run directory (null: outputs/runs/<date>/<time>). Re-running "
                                       "the same config into it continues or returns the finished run.")
    resume: Optional[str] = option(None, "A run directory to continue: its own config, plus the overrides given.")
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
SECTION_SCHEMAS = {"distill": DistillConfig, "eval": EvalConfig, "train": TrainConfig,
                   "experts": ExpertsConfig, "checkpoint": CheckpointConfig}
METHOD_SCHEMAS = {
    "gradient_matching": GradientMatchingConfig,
    "distribution_matching": DistributionMatchingConfig,
    "trajectory_matching": TrajectoryMatchingConfig,
}


def schema_of(section: str, method: Optional[str] = None) -> type:
    """The schema class of a top-level section ('' for the top level itself; method: the chosen method's)."""
    if section == "":
        return Config
    if section == "method" and method in METHOD_SCHEMAS:
        return METHOD_SCHEMAS[method]
    return {**GROUP_SCHEMAS, **SECTION_SCHEMAS}[section]


def all_settings() -> List[Setting]:
    """Every documented key: top level, groups, sections, and the method-specific keys (as method.*),
    each once."""
    out, seen = [], set()
    for section in ("", *GROUP_SCHEMAS, *SECTION_SCHEMAS):
        out += settings(schema_of(section), f"{section}." if section else "")
    for schema in METHOD_SCHEMAS.values():
        out += [s for s in settings(schema, "method.") if s.key not in seen and s.key != "method.name"]
        seen.update(s.key for s in out)
    return out


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name=f"base_{group}", node=schema)
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(group="method", name=f"base_{name}", node=schema)


register_configs()
