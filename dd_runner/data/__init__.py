"""Datasets: one registered loader per source format, selected by `dataset.loader`.

A loader takes the `dataset` config (and the model config, for tokenisers) and returns a `DataBundle`
of train / val / test splits carved with the Hugging Face slice syntax. Adding a dataset is a YAML file
under conf/dataset/ plus, for a new format, one function registered here.
"""

from dd_runner.core.registry import Registry
from dd_runner.data.bundle import DataBundle, Split  # noqa: F401

LOADERS = Registry("dataset loader")
LOADERS.add("idx_images", "dd_runner.data.idx_images:load_idx_images")
LOADERS.add("hf_images", "dd_runner.data.hf_images:load_hf_images")
LOADERS.add("torchvision", "dd_runner.data.torchvision_images:load_torchvision")
LOADERS.add("hf_text", "dd_runner.data.text:load_text")


def load_data(dataset_cfg, model_cfg=None) -> DataBundle:
    return LOADERS.get(dataset_cfg.loader)(dataset_cfg, model_cfg)
