"""A distilled set in the form Zhao et al.'s DatasetCondensation code reads (github.com/VICO-UoE/
DatasetCondensation, utils.py): `evaluate_synset(it_eval, net, image_syn, label_syn, testloader, args)` trains
`net` on (image_syn, label_syn) and tests it, with `args.lr_net`, `args.epoch_eval_train`, `args.batch_train`,
`args.dsa` / `args.dsa_strategy` / `args.dsa_param` (a `ParamDiffAug`) or `args.dc_aug_param`, `args.device`.

`dc_payload` gives those as plain tensors, numbers and dicts (what `torch.save` stores and
`torch.load(weights_only=True)` reads back); `dd-export RUN --format dc --to FILE` writes it. What DC's
evaluator cannot express (learned lrs, soft or teacher labels, dd-run's exact schedule) is listed in `notes`,
so a figure from DC's evaluator is not mistaken for a reproduction of the run's.
"""

from __future__ import annotations

import json
from typing import Dict, List

import torch

from dd_runner.core.errors import DataError
from dd_runner.reuse import replay

# dd-run's image models under the names of DC's get_network (utils.py)
DC_MODELS = {"mlp": "MLP", "convnet": "ConvNet", "lenet": "LeNet", "alexnet": "AlexNet", "vgg11": "VGG11",
             "resnet18": "ResNet18"}
# what DC's evaluate_synset fixes in its code (torch.optim.SGD(momentum=0.9, weight_decay=0.0005))
DC_MOMENTUM, DC_WEIGHT_DECAY = 0.9, 0.0005
DC_DEFAULT_LR = 0.01  # DC's --lr_net default


def dsa_param(augment: dict) -> Dict[str, object]:
    """DC's ParamDiffAug fields from dd-run's augment.* settings (the same parameters under DC's names; one
    transform per batch, aug_mode 'S'; flips with probability 0.5). Without DSA: DC's defaults."""
    get = augment.get
    return {"aug_mode": "S", "prob_flip": 0.5, "ratio_scale": float(get("scale", 1.2)),
            "ratio_rotate": float(get("rotate", 15.0)), "ratio_crop_pad": float(get("crop", 0.125)),
            "ratio_cutout": float(get("cutout", 0.5)), "brightness": float(get("brightness", 1.0)),
            "saturation": float(get("saturation", 2.0)), "contrast": float(get("contrast", 0.5))}


def dc_payload(d) -> Dict[str, object]:
    """`DistilledSet.to_dc()`: the set, flattened over steps, with the `args` fields DC's evaluator reads."""
    meta, config, protocol = d.metadata, d.config, d.protocol
    if meta.get("modality", "image") != "image" or d.data.dim() != 5:
        raise DataError("DC's evaluator trains image classifiers: this set is not images (modality "
                        f"{meta.get('modality')!r}); use load_distilled(...).train() instead")
    augment = replay.augment_settings(protocol, config)
    lr = replay.fixed_lr(protocol, d.lrs)
    channel, height, width = d.data.shape[2:]
    image_syn = d.data.float().flatten(0, 1).contiguous()
    label_syn = d.classes.long().repeat(d.data.shape[0])
    norm = d.normalisation
    args = {"dsa": augment["name"] == "dsa", "dsa_strategy": augment.get("strategy", "none") if augment["name"] == "dsa"
            else "none", "dsa_param": dsa_param(augment), "dc_aug_param": None,
            "epoch_eval_train": int(protocol.get("train_epochs") or 300), "lr_net": lr if lr is not None else DC_DEFAULT_LR,
            "batch_train": int(protocol.get("train_batch") or 256), "num_eval": int(protocol.get("nets") or 1),
            "model": DC_MODELS.get(config.get("model", {}).get("name", ""), config.get("model", {}).get("name", "")),
            "dataset": config.get("dataset", {}).get("name", meta.get("dataset", "")), "ipc": int(meta.get("ipc", 0) or 0)}
    return {"image_syn": image_syn, "label_syn": label_syn, "label_soft": d.targets.float().flatten(0, 1).contiguous(),
            "data": [[image_syn, label_syn]], "args": args, "channel": int(channel), "im_size": [int(height), int(width)],
            "num_classes": int(d.targets.shape[-1]), "class_names": _class_names(meta, d.targets.shape[-1]),
            "mean": list(norm.get("mean") or [0.0] * channel), "std": list(norm.get("std") or [1.0] * channel),
            "metrics": dict(d.metrics), "notes": notes(d, protocol, lr)}


def notes(d, protocol: dict, lr) -> List[str]:
    """Where DC's evaluate_synset differs from the protocol that produced the set's figure."""
    if protocol.get("schedule", "distilled") == "train":
        epochs = protocol.get("train_epochs")
        out = [f"DC's evaluate_synset trains epoch_eval_train + 1 epochs and divides the lr by 10 after epoch "
               f"epoch_eval_train // 2 + 1; dd-run trained {epochs} epochs, /10 from epoch {epochs // 2}, in its "
               "own minibatch order and augmentation draws"]
    else:
        out = [f"dd-run evaluated with eval.schedule=distilled ({d.data.shape[0]} steps x {d.epochs} epochs in order, "
               "no momentum or weight decay" + (", the set's learned lrs" if lr is None else f", lr {lr}")
               + "): DC's minibatch SGD is another protocol"]
    if lr is None:
        out.append(f"the set was evaluated with its learned per-step lrs, which DC cannot use: lr_net is DC's default {DC_DEFAULT_LR}")
    train = protocol.get("schedule", "distilled") == "train"
    if train and (protocol.get("train_momentum"), protocol.get("train_weight_decay")) != (DC_MOMENTUM, DC_WEIGHT_DECAY):
        out.append(f"DC's code fixes momentum {DC_MOMENTUM} and weight decay {DC_WEIGHT_DECAY}; dd-run used "
                   f"{protocol.get('train_momentum')} and {protocol.get('train_weight_decay')}")
    hard = torch.nn.functional.one_hot(d.classes.long(), d.targets.shape[-1]).to(d.targets.dtype)
    if d.teacher_probs is not None or not torch.equal(d.targets, hard.expand_as(d.targets)):
        out.append("DC trains on hard labels (label_syn); the set's label distributions (label_soft"
                   + (" and the teacher's probabilities" if d.teacher_probs is not None else "") + ") are not used")
    if any(k.startswith("zca/") for k in d.extras):
        out.append("the images are ZCA-whitened: whiten DC's test images the same way (DistilledSet.normalise)")
    return out


def _class_names(meta: Dict[str, str], count: int) -> List[str]:
    names = json.loads(meta.get("class_names", "[]"))  # load_distilled checked that it parses
    return [str(n) for n in names] if len(names) == count else [str(c) for c in range(count)]
