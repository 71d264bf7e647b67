"""Models: one registered builder per architecture, selected by `model.arch`.

A builder takes (model config, DataBundle, device, Precision, distill config) and returns a `Learner`: the
network plus how synthetic and real inputs enter it and how p(theta) is sampled. (Text learners read the
synthetic sequence length, distill.seq_len, to put real examples into the synthetic layout.)

`model.arch` also takes an import path "package.module:function" to a builder with that signature, kept in
the user's own code and imported when first used (docs/own-data.md; `build_image_learner` in
dd_runner/models/zoo/common.py turns an image nn.Module into a Learner).
"""

from dd_runner.core.registry import Registry
from dd_runner.models.learner import Learner, Params, Step  # noqa: F401

ARCHS = Registry("model architecture", import_setting="model.arch")
ARCHS.add("lenet", "dd_runner.models.lenet:build_lenet")
ARCHS.add("convnet", "dd_runner.models.convnet:build_convnet")
ARCHS.add("mlp", "dd_runner.models.zoo.mlp:build_mlp")
ARCHS.add("alexnet", "dd_runner.models.zoo.alexnet:build_alexnet")
ARCHS.add("vgg11", "dd_runner.models.zoo.vgg:build_vgg11")
ARCHS.add("resnet18", "dd_runner.models.zoo.resnet:build_resnet18")
ARCHS.add("hf_classifier", "dd_runner.models.hf:build_hf_classifier")
ARCHS.add("hf_causal_lm", "dd_runner.models.hf:build_hf_causal_lm")


def build_learner(model_cfg, data, device, precision, distill_cfg=None) -> Learner:
    return ARCHS.get(model_cfg.arch)(model_cfg, data, device, precision, distill_cfg)
