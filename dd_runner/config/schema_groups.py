"""The schemas of the config groups (dataset=, model=, init=, labels=, augment=, method=, logger=): what
each option of conf/<group>/ may set. See dd_runner/config/schema.py for how they are used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from dd_runner.config.fields import ANY, FRACTION, NON_NEGATIVE, POSITIVE, SEED, UNIT, Bound, option


@dataclass
class DatasetConfig:
    """dataset=OPTION: where the real data come from and how they are split, normalised and tokenised."""

    name: str = option(MISSING, "What the run is called in artefacts and on W&B.")
    loader: str = option(MISSING, "How the files are read: idx_images (MNIST-style idx files, local or a "
                         "torchvision download), hf_images (any image-classification dataset Hugging Face "
                         "datasets opens: a hub id, local parquet / arrow files, a save_to_disk folder, or an "
                         "image folder with one sub-directory per class), torchvision (any torchvision.datasets "
                         "class, downloaded into dataset.root) or hf_text (a Hugging Face dataset or local CSV / "
                         "JSON files).", choices="dd_runner.data:LOADERS")
    task: str = option("classification", "What a network learns from the data: classification (labels) or "
                       "language_modeling (next tokens, no labels).", choices=("classification", "language_modeling"))
    modality: str = option("image", "image or text: decides the synthetic space (pixels, or a model's input "
                           "embeddings), the models that can read it and the artefact view.", choices=("image", "text"))
    hub_name: Optional[str] = option(None, "The hub id used when no local files are given: a torchvision dataset "
                                     "class for idx_images and torchvision (MNIST, CIFAR10, SVHN), a Hugging Face "
                                     "dataset for hf_text and hf_images (ag_news, uoft-cs/cifar10).")
    hub_config: Optional[str] = option(None, "The dataset's variant where it has several: the Hugging Face config "
                                       "name for hf_images / hf_text (ufldl-stanford/svhn: cropped_digits), or "
                                       "torchvision's split argument of EMNIST (balanced, byclass, letters, ...). "
                                       "Train / test parts are chosen by the dataset.*_split settings, not here.")
    root: Optional[str] = option(None, "Local folder of the files: idx files, flat or in torchvision's "
                                 "<root>/<hub_name>/raw layout (idx_images); torchvision's download folder "
                                 "(torchvision; default ~/.cache/dd_runner/<name>); or, for hf_images, a folder of "
                                 "parquet / arrow files, a save_to_disk folder, or an image folder (one "
                                 "sub-directory of images per class, optionally under train/ and test/).")
    download: bool = option(True, "Images: fetch missing files into dataset.root through torchvision. The "
                            "*_offline datasets set false: a missing file is then an error, never a download.")
    data_files: Optional[Any] = option(None, "Local files instead of the hub: a path, a list (the 'train' "
                                       "split), or a map {split: path or list}; CSV, JSON or JSON lines for "
                                       "hf_text, parquet or arrow files (or image files, glob patterns allowed) "
                                       "for hf_images.")
    split_seed: Optional[int] = option(None, "Shuffle each source split with this seed before the split specs "
                                       "slice it (null: keep the file order).", bound=SEED)
    train_split: str = option("train[:90%]", "The rows distilled from, in Hugging Face slice syntax "
                              "(train[:90%], test[:8000], a[:10]+b[5%:]); quote slices for Hydra: "
                              "'dataset.train_split=\"test[:7200]\"'.")
    val_split: str = option("train[90%:]", "The rows used for model selection (which set to keep, which lr): "
                            "carved from training data, never from the test rows.")
    test_split: str = option("test", "The rows the reported figures are measured on, and nothing else. The "
                             "three splits must not share rows.")
    num_classes: Optional[int] = option(None, "Number of classes (null: one more than the largest label read). "
                                        "A label outside [0, num_classes) is refused.", bound=POSITIVE)
    class_names: List[str] = option([], "Names of the classes, in label order (empty: the label numbers).")
    image_shape: List[int] = option([], "Images: [channels, height, width] of one example. hf_images and "
                                    "torchvision convert every image to it: 1 channel is PIL mode L, 3 is RGB, "
                                    "and other sizes are resized with PIL's bilinear filter (no cropping, so "
                                    "the aspect ratio follows the target). idx_images cannot resize: its files "
                                    "must match. Empty: the first training image decides (grey modes give 1 "
                                    "channel, others RGB) and every image must have its size.", bound=POSITIVE)
    image_column: Optional[str] = option(None, "hf_images: the column holding the images (null: the dataset's "
                                         "one column of the Image type, e.g. 'img' for CIFAR-10 on the hub).")
    mean: List[float] = option([], "Images: per-channel mean subtracted after scaling pixels to [0, 1] "
                               "(empty: measured on dataset.train_split and recorded in the set's header).",
                               bound=ANY)
    std: List[float] = option([], "Images: per-channel standard deviation divided by after the mean (empty: "
                              "measured on dataset.train_split, population std over all pixels).", bound=POSITIVE)
    zca: bool = option(False, "Images: ZCA-whiten instead of mean / std, as trajectory matching does on CIFAR: "
                       "fitted on dataset.train_split only (pixels in [0, 1]), applied to every split, and stored "
                       "in distilled.safetensors (zca/ tensors), so load_distilled(...).normalise() whitens new "
                       "images and dd-export undoes it. Costs a (C*H*W)^2 matrix: 3x32x32 is 38 MB.")
    zca_eps: float = option(0.1, "The ZCA regularisation added to every eigenvalue of the training pixels' "
                            "covariance before the inverse square root (0.1: MTT's kornia ZCAWhitening(eps=0.1)); "
                            "a larger value damps the low-variance directions (fine detail and noise) more.", bound=POSITIVE)
    max_length: int = option(64, "Text: tokens per real example (truncated or padded; padding is masked "
                             "out).", bound=POSITIVE)
    text_column: str = option("text", "Text: the column holding the text, or columns joined with a space: "
                              "'title+description'.")
    label_column: str = option("label", "The column holding the class label.")
    min_length: int = option(0, "Language modelling: drop examples shorter than this many tokens.",
                             bound=NON_NEGATIVE)
    columns: List[str] = option([], "Names of the columns of header-less CSV files, in file order (the "
                                "original AG News CSV: [label, title, description]).")
    label_offset: int = option(0, "Subtracted from the labels read from local files (AG News numbers its "
                               "classes from 1: label_offset=1).", bound=ANY)


@dataclass
class ModelConfig:
    """model=OPTION: the network the set is distilled for, and the distribution p(theta) it is drawn from."""

    name: str = option(MISSING, "What the model is called in artefacts, tables and on W&B.")
    arch: str = option(MISSING, "The registered builder: lenet, convnet, mlp, alexnet, vgg11, resnet18 "
                       "(images); hf_classifier, hf_causal_lm (transformers); or your own builder as an import "
                       "path 'package.module:function' (the builders' signature, see dd_runner/models/__init__.py), "
                       "imported from an installed package, PYTHONPATH or the working directory.",
                       choices="dd_runner.models:ARCHS")
    modality: str = option("image", "image or text: which datasets the model can read.", choices=("image", "text"))
    weight_init: str = option("xavier", "p(theta), the distribution networks are drawn from: xavier (normal "
                              "weights, zero biases: Wang et al.'s LeNet), kaiming, default (PyTorch's own "
                              "initialisation: the DC / DM / MTT networks) or transformers (the model's own "
                              "_init_weights: text models). Each model option sets its paper's.",
                              choices=("xavier", "kaiming", "default", "transformers"))
    width: int = option(128, "convnet: channels of every convolution; mlp: units of each hidden layer.",
                        bound=POSITIVE)
    depth: int = option(3, "convnet: number of [conv, norm, ReLU, pool] blocks.", bound=POSITIVE)
    norm: Optional[str] = option(None, "convnet, alexnet, vgg11, resnet18: the normalisation after each "
                                 "convolution: instance, batch (the papers' *BN variants) or none (null: "
                                 "convnet, vgg11 and resnet18 use instance, alexnet none, as the papers). "
                                 "Other models refuse it; a builder given by import path reads it as it likes.",
                                 choices=("instance", "batch", "none"))
    name_or_path: Optional[str] = option(None, "Transformers: a hub id or a local directory of a pretrained "
                                         "model.")
    tokenizer: Optional[str] = option(None, "Transformers: a hub id or a local directory of the tokenizer "
                                      "(null: model.name_or_path).")
    pretrained: bool = option(True, "Transformers: load the pretrained body's weights; false builds random "
                              "weights from model.architecture and model.config_overrides (no download).")
    config_overrides: Dict[str, Any] = option({}, "Transformers: fields changed in the model's config, a "
                                              "free-form map (add entries with '+', e.g. "
                                              "'+model.config_overrides={n_layers: 2, dim: 32}').")
    dropout: Optional[float] = option(None, "Override the model's dropout probabilities (the text recipes "
                                      "set 0.0: the inner loop trains without dropout).", bound=FRACTION)
    trust_remote_code: bool = option(False, "Transformers: allow a hub model's own Python code to run.")
    architecture: Dict[str, Any] = option({}, "Transformers: the config of name_or_path (model_type and "
                                          "fields), used for random weights when its config.json is not at hand.")


@dataclass
class InitConfig:
    """init=OPTION: which theta_0 the inner training starts from."""

    mode: str = option(MISSING, "fixed: one theta_0 drawn from the seed, for distillation and evaluation; "
                       "random: a fresh draw of p(theta) for every sampled network, evaluated on eval.nets unseen "
                       "draws; pretrained: theta_0 loaded from init.checkpoint (or a pretrained transformer).",
                       choices="dd_runner.models.inits:INIT_MODES")
    checkpoint: Optional[str] = option(None, "pretrained: a model.safetensors written by `dd-run mode=train` "
                                       "(or a .pt / .pth / .bin state dict, read with weights_only=True).")
    resample: List[str] = option([], "pretrained: parameter-name prefixes redrawn from p(theta) for every "
                                 "network (e.g. [classifier]); the rest stays as loaded.")


@dataclass
class LabelsConfig:
    """labels=OPTION: what the synthetic examples are labelled with, and whether the labels are learned."""

    type: str = option(MISSING, "hard: fixed one-hot labels; soft: learned logits through a softmax; "
                       "unrestricted: learned real vectors (may go negative); teacher: knowledge-distillation "
                       "targets from labels.teacher.", choices="dd_runner.synthetic.set:LABEL_TYPES")
    init_scale: float = option(1.0, "Learned labels start at init_scale x one-hot.", bound=NON_NEGATIVE)
    attention: str = option("none", "Text classifiers: learned attention labels for the first token (cls) or "
                            "for every token (all), added to the inner loss as a KL term.",
                            choices="dd_runner.synthetic.text:ATTENTION_LABELS")
    attention_weight: float = option(1.0, "Weight of the attention labels' KL term, per distribution "
                                      "(Maekawa's lambda = 100 over every element is about 100 / seq_len).",
                                      bound=NON_NEGATIVE)
    teacher: Optional[str] = option(None, "teacher: a model.safetensors of `dd-run mode=train` with the same "
                                    "model config.")
    temperature: float = option(4.0, "teacher: softmax temperature T of both teacher and student.",
                                bound=POSITIVE)
    alpha: float = option(0.9, "teacher: the loss is alpha x T^2 x KL(teacher_T || student_T) + (1 - alpha) "
                          "x cross-entropy with the hard label.", bound=UNIT)


@dataclass
class AugmentConfig:
    """augment=OPTION: Differentiable Siamese Augmentation (Zhao & Bilen 2021) for the matching methods: one
    transform per matching step, the same for the real and the synthetic batch."""

    name: str = option(MISSING, "none, or dsa (Differentiable Siamese Augmentation).", choices=("none", "dsa"))
    strategy: str = option("color_crop_cutout_scale_rotate", "The transforms one is drawn from at each step, "
                           "'_'-separated, from color, crop, cutout, scale, rotate and flip (add _flip where a "
                           "mirrored image keeps its class).")
    scale: float = option(1.2, "Images are scaled by a factor drawn from [1/scale, scale].",
                          bound=Bound(">= 1 (images are scaled by a factor in [1/scale, scale])", lambda v: v >= 1))
    rotate: float = option(15.0, "Largest rotation, in degrees.", bound=NON_NEGATIVE)
    crop: float = option(0.125, "Largest translation, as a fraction of the image size.", bound=FRACTION)
    cutout: float = option(0.5, "Size of the zeroed square, as a fraction of the image size.", bound=FRACTION)
    brightness: float = option(1.0, "Range of the added brightness shift.", bound=POSITIVE)
    saturation: float = option(2.0, "Largest saturation factor (colour images).", bound=POSITIVE)
    contrast: float = option(0.5, "Contrast factor offset: contrast is scaled by a factor drawn from "
                             "[contrast, contrast + 1].", bound=POSITIVE)


@dataclass
class MethodConfig:
    """method=OPTION: what the synthetic set is optimised for."""

    name: str = option(MISSING, "performance_matching (Wang et al. 2018: a meta-gradient through the unrolled "
                       "inner steps), gradient_matching (DC / DSA), distribution_matching (DM), "
                       "trajectory_matching (MTT) or logit_match (language models).",
                       choices="dd_runner.methods:METHODS")


@dataclass
class GradientMatchingConfig(MethodConfig):
    outer_loop: int = option(1, "Synthetic updates per sampled network (DC: 1 for 1 image per class, 10 for 10).",
                             bound=POSITIVE)
    inner_loop: int = option(1, "Epochs of network training on the synthetic set between those updates "
                             "(DC: 1 for 1 image per class, 50 for 10).", bound=POSITIVE)
    lr_net: float = option(0.01, "SGD lr of that network training.", bound=POSITIVE)
    batch_real: int = option(256, "Real examples per class per matching step.", bound=POSITIVE)
    distance: str = option("layerwise", "layerwise: DC's per-output-unit cosine distance, summed over layers; "
                           "mse: squared error of the flattened gradients.", choices=("layerwise", "mse"))


@dataclass
class DistributionMatchingConfig(MethodConfig):
    batch_real: int = option(256, "Real examples per class per matching step.", bound=POSITIVE)


@dataclass
class TrajectoryMatchingConfig(MethodConfig):
    experts: Optional[str] = option(None, "A directory written by `dd-run mode=experts` "
                                    "(expert_*.safetensors), of the same dataset and model.")
    expert_epochs: int = option(2, "M: the target is the expert's parameters M epochs after the start.",
                                bound=POSITIVE)
    max_start_epoch: int = option(5, "Start epochs are drawn from [0, max_start_epoch).", bound=POSITIVE)


@dataclass
class LoggerConfig:
    """logger=OPTION: where curves, media and artefacts are logged besides the run directory."""

    name: str = option(MISSING, "wandb (Weights & Biases) or none (console and run directory only).",
                       choices=("wandb", "none"))
    project: str = option("dd-runner", "W&B project.")
    entity: Optional[str] = option(None, "W&B entity (user or team); null: your default.")
    mode: str = option("offline", "offline (files in <run dir>/wandb; `wandb sync` uploads them later), online "
                       "(live; needs `wandb login`) or disabled.", choices=("offline", "online", "disabled"))
    group: Optional[str] = option(None, "W&B group (null: the sweep directory's name in a multirun).")
    tags: List[str] = option([], "W&B tags of the run.")
    log_every: int = option(10, "Outer iterations between logged points of the curves.", bound=POSITIVE)
    log_checkpoints: bool = option(False, "Log the resume checkpoint as a W&B artifact (type checkpoint) at "
                                   "every save.")
