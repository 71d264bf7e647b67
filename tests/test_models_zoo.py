"""The benchmark architectures (convnet, lenet, mlp, alexnet, vgg11, resnet18): each builds from its YAML with
exactly the parameter counts of DC's networks for 1x28x28 and 3x32x32 images and for any other size, trains on real MNIST, batches under vmap where it can (batch norm
cannot) and gives every evaluation network its own batch-norm statistics."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from dd_runner.core.device import Precision
from dd_runner.core.errors import ConfigError
from dd_runner.data import load_data
from dd_runner.models import build_learner
from dd_runner.models.learner import Step
from dd_runner.models.stacked import StackedNets, require_vmap, stack, unstack

from conftest import MNIST_OFFLINE, compose_cfg
from helpers import CPU

# Parameter counts of DC's definitions (VICO-UoE/DatasetCondensation networks.py), worked out by hand from
# their layer shapes for 10 classes; a conv k x k from a to b channels has a*b*k*k + b parameters (ResNet's
# convolutions have no bias), an affine norm over c channels 2c.
DC_COUNTS = {
    # ConvNet (width 128, depth 3, instance norm): convs 2 x (128*128*9 + 128) = 295,168, 3 norms 768; the first
    # conv pads by 3 on 1 channel, so 28 + 6 - 2 = 32 -> 16 -> 8 -> 4: linear 128*4*4*10 + 10 = 20,490.
    ("convnet", (1, 28, 28)): 317_706,  # first conv 1*128*9 + 128 = 1,280 + 295,168 + 768 + 20,490
    ("convnet", (3, 32, 32)): 320_010,  # first conv 3*128*9 + 128 = 3,584 + 295,168 + 768 + 20,490
    # LeNet: conv2 6*16*25 + 16 = 2,416; fc1 16*5*5*120 + 120 = 48,120; fc2 120*84 + 84 = 10,164; fc3 84*10 + 10 = 850
    ("lenet", (1, 28, 28)): 61_706,  # conv1 1*6*25 + 6 = 156 (+ 61,550)
    ("lenet", (3, 32, 32)): 62_006,  # conv1 3*6*25 + 6 = 456 (+ 61,550)
    # MLP: fc_2 128*128 + 128 = 16,512; fc_3 128*10 + 10 = 1,290
    ("mlp", (1, 28, 28)): 118_282,  # fc_1 784*128 + 128 = 100,480
    ("mlp", (3, 32, 32)): 411_146,  # fc_1 3072*128 + 128 = 393,344
    # AlexNet: conv2 128*192*25 + 192 = 614,592; conv3 192*256*9 + 256 = 442,624; conv4 256*192*9 + 192 =
    # 442,560; conv5 192*192*9 + 192 = 331,968; fc 192*4*4*10 + 10 = 30,730 (together 1,862,474)
    ("alexnet", (1, 28, 28)): 1_865_802,  # conv1 1*128*25 + 128 = 3,328 (padding 4)
    ("alexnet", (3, 32, 32)): 1_872_202,  # conv1 3*128*25 + 128 = 9,728 (padding 2)
    # VGG11 (instance norm): convs 64*128*9 + 128 = 73,856; 128*256*9 + 256 = 295,168; 256*256*9 + 256 =
    # 590,080; 256*512*9 + 512 = 1,180,160; 3 x (512*512*9 + 512) = 7,079,424; norms 2 x (64 + 128 + 256 +
    # 256 + 4 x 512) = 5,504; classifier 512*10 + 10 = 5,130 (together 9,229,322)
    ("vgg11", (1, 28, 28)): 9_229_962,  # first conv 1*64*9 + 64 = 640 (padding 3)
    ("vgg11", (3, 32, 32)): 9_231_114,  # first conv 3*64*9 + 64 = 1,792
    # ResNet18 (instance norm): stem norm 128; layer1 2 x (2 x 64*64*9 + 256) = 147,968; layer2 (64*128*9 +
    # 128*128*9 + 512 + 64*128 + 256) + (2 x 128*128*9 + 512) = 525,568; layer3 919,040 + 1,180,672 =
    # 2,099,712; layer4 3,673,088 + 4,720,640 = 8,393,728; classifier 512*10 + 10 = 5,130 (together 11,172,234)
    ("resnet18", (1, 28, 28)): 11_172_810,  # stem conv 1*64*9 = 576
    ("resnet18", (3, 32, 32)): 11_173_962,  # stem conv 3*64*9 = 1,728
}


@pytest.fixture(scope="module")
def mnist():
    return load_data(compose_cfg(["dataset=mnist_offline", *MNIST_OFFLINE]).dataset)


def learner_for(name, data, *extra):
    return build_learner(model_config(name, *extra), data, CPU, Precision("fp32", CPU))


@functools.lru_cache(maxsize=None)
def model_config(name, *extra):
    return compose_cfg([f"model={name}", *extra]).model


def images_of(shape, classes=10):
    return SimpleNamespace(modality="image", name="images", example_shape=shape, num_classes=classes)


def count(learner) -> int:
    return sum(p.numel() for p in learner.module.parameters())


@pytest.mark.parametrize("name, shape", sorted(DC_COUNTS), ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in sorted(DC_COUNTS)])
def test_sized_exactly_as_dcs_networks(name, shape):
    learner = learner_for(name, images_of(shape))
    assert count(learner) == DC_COUNTS[name, shape]
    assert learner.module(torch.zeros(2, *shape)).shape == (2, 10)


def test_any_image_size_builds_with_the_classifier_sized_by_a_forward_pass():
    # ConvNet depth 4 on 3x64x64 (DC's ConvNetD4): 64 -> 32 -> 16 -> 8 -> 4, so the same 2,048 features;
    # first conv 3,584 + 3 x 147,584 = 442,752 + 4 norms 1,024 + linear 20,490 = 467,850
    assert count(learner_for("convnet", images_of((3, 64, 64)), "model.depth=4")) == 467_850
    for name in ("convnet", "lenet", "mlp", "alexnet", "vgg11", "resnet18"):
        for shape in ((1, 32, 32), (3, 28, 28)):
            if (name, shape) == ("vgg11", (3, 28, 28)):  # five poolings leave 1x1 maps to instance-normalise
                continue
            assert learner_for(name, images_of(shape, 7)).module(torch.zeros(1, *shape)).shape == (1, 7)
    # ResNet-18 keeps its 4x4 average pooling: 64x64 ends on 2x2 x 512 features
    assert learner_for("resnet18", images_of((3, 64, 64))).module.classifier.in_features == 2048


def test_convnet_norms_and_images_too_small_are_one_line():
    base = DC_COUNTS["convnet", (1, 28, 28)]
    assert count(learner_for("convnet", images_of((1, 28, 28)), "model.norm=batch")) == base  # ConvNetBN: 2c each
    assert count(learner_for("convnet", images_of((1, 28, 28)), "model.norm=none")) == base - 768  # ConvNetNN
    with pytest.raises(ConfigError, match="model.depth=5 pools 16x16 images to nothing"):
        learner_for("convnet", images_of((3, 16, 16)), "model.depth=5")
    with pytest.raises(ConfigError, match=r"images of shape \(3, 16, 16\) are too small"):
        learner_for("vgg11", images_of((3, 16, 16)))
    with pytest.raises(ConfigError, match=r"images of shape \(3, 28, 28\) are too small"):
        learner_for("vgg11", images_of((3, 28, 28)))  # DC's VGG11 fails on these too (1x1 instance norm)


@pytest.mark.parametrize("name, extra", [("mlp", []), ("alexnet", []), ("vgg11", []), ("resnet18", []),
                                         ("alexnet", ["model.norm=batch"])])
def test_trains_on_real_images(name, extra, mnist):
    """A few SGD steps on 16 real MNIST images lower the loss on them; draws differ by seed and repeat."""
    learner = learner_for(name, mnist, *extra)
    batch = mnist.train.select(torch.arange(16))
    step = Step(batch.inputs, F.one_hot(batch.labels, 10).float(), torch.tensor(0.01))
    theta = learner.draw(3)
    assert all(torch.equal(a, b) for a, b in zip(theta, learner.draw(3)))
    assert not all(torch.equal(a, b) for a, b in zip(theta, learner.draw(4)))
    before = learner.inner_loss(theta, step).item()
    trained = learner.train_on_steps(theta, [step] * 3)
    assert learner.inner_loss(trained, step).item() < before
    assert 0.0 <= learner.evaluate(trained, mnist.val.select(torch.arange(64)), 64)["acc"] <= 1.0


def test_momentum_and_weight_decay_keep_no_graph_across_steps(mnist, monkeypatch):
    """The train schedule (SGD with momentum and weight decay) holds one step's tensors at a time: a momentum
    buffer that carried a graph back to its step's weights kept every step's weights alive (ResNet-18 on a
    CPU: 45 MB a step, out of memory at 1,000 epochs)."""
    import dd_runner.models.learner as learner_module

    seen = []

    def spy(*args, **kwargs):
        params, buffers = update(*args, **kwargs)
        seen.append(any(t.requires_grad or t.grad_fn is not None for t in (*params, *buffers)))
        return params, buffers

    update = learner_module.sgd_update
    monkeypatch.setattr(learner_module, "sgd_update", spy)
    learner = learner_for("mlp", mnist)
    batch = mnist.train.select(torch.arange(16))
    step = Step(batch.inputs, F.one_hot(batch.labels, 10).float(), torch.tensor(0.01))
    theta = learner.draw(0)
    trained = learner.train_on_steps(theta, [step] * 4, momentum=0.9, weight_decay=5e-4)
    assert seen == [False] * 4
    module = learner_for("mlp", mnist).module  # the same update as torch.optim.SGD's
    with torch.no_grad():
        for p, t in zip(module.parameters(), theta):
            p.copy_(t)
    opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    for _ in range(4):
        opt.zero_grad()
        (-(step.y * F.log_softmax(module(step.x), -1)).sum(-1).mean()).backward()
        opt.step()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(trained, module.parameters()))


@pytest.mark.parametrize("name, extra", [("mlp", []), ("alexnet", ["model.norm=instance"])])
def test_batched_under_vmap_as_one_at_a_time(name, extra, mnist):
    """(ResNet-18 and VGG-11 are the same layers: convolutions, instance norm, pooling, linear.)"""
    learner = learner_for(name, mnist, *extra)
    require_vmap(learner, "distill.engine=vmap")  # no error
    batch = mnist.train.select(torch.arange(8))
    step = Step(batch.inputs.double(), F.one_hot(batch.labels, 10).double(), torch.tensor(0.05, dtype=torch.float64))
    learner.module.double()
    thetas = [tuple(p.double().requires_grad_() for p in learner.draw(seed)) for seed in (0, 1)]
    batched = unstack(StackedNets(learner).sgd_step(stack(thetas), step))
    for theta, together in zip(thetas, batched):
        alone = learner.sgd_step(theta, step, create_graph=False)
        for a, b in zip(alone, together):
            torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_batch_norm_is_refused_by_vmap_and_keeps_statistics_per_network(mnist):
    learner = learner_for("alexnet", mnist, "model.norm=batch")
    with pytest.raises(ConfigError, match="batch norm"):
        require_vmap(learner, "distill.engine=vmap")
    batch, held_out = mnist.train.select(torch.arange(12)), mnist.val.select(torch.arange(64))
    steps = [Step(batch.inputs, F.one_hot(batch.labels, 10).float(), torch.tensor(0.01))] * 2
    theta, other = learner.draw(0), learner.draw(1)
    first = learner.evaluate(learner.train_on_steps(theta, steps), held_out, 64)
    learner.train_on_steps(other, steps * 2)  # another network trains in between
    again = learner.evaluate(learner.train_on_steps(theta, steps), held_out, 64)
    assert again == first  # its own statistics, not a mix with the other network's
    stats = [b.clone() for b in learner.module.buffers()]
    learner.real_features(learner.as_dict(theta), held_out)
    assert all(torch.equal(a, b) for a, b in zip(stats, learner.module.buffers()))  # features leave them alone


def test_norm_choices_are_checked():
    from dd_runner.config.validate import validate

    with pytest.raises(ConfigError, match="unknown model.norm 'layer'"):
        validate(compose_cfg(["dataset=mnist_offline", "model=vgg11", "model.norm=layer"]))
    with pytest.raises(ConfigError, match="model.norm=batch has no effect on model=lenet"):
        validate(compose_cfg(["dataset=mnist_offline", "model.norm=batch"]))
    with pytest.raises(ConfigError, match="use model.norm=instance"):
        validate(compose_cfg(["dataset=mnist_offline", "model=resnet18", "model.norm=batch"]))
    validate(compose_cfg(["dataset=mnist_offline", "model=resnet18", "model.norm=batch", "method=distribution_matching"]))


def test_a_model_by_import_path_is_built_and_a_bad_path_is_one_line(tmp_path, monkeypatch):
    """model.arch=package.module:function: a user's builder in their own folder (the working directory)."""
    import sys
    import textwrap

    from dd_runner.config.validate import validate

    (tmp_path / "user_nets_zoo_test.py").write_text(textwrap.dedent("""
        from torch import nn
        from dd_runner.models.zoo.common import FeaturesThenLinear, build_image_learner

        class Tiny(FeaturesThenLinear):
            def __init__(self, shape, classes, width):
                super().__init__(nn.Sequential(nn.Conv2d(shape[0], width, 3, padding=1), nn.ReLU(),
                                               nn.AdaptiveAvgPool2d(2)), shape, classes)

        def build(model_cfg, data, device, precision, distill_cfg=None):
            return build_image_learner("tiny", model_cfg, data, device, precision,
                                       lambda shape, classes: Tiny(shape, classes, model_cfg.width))

        NOT_A_BUILDER = 3
        """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the working directory is appended: undo it afterwards
    cfg = compose_cfg(["dataset=mnist_offline", "model=convnet", "model.arch=user_nets_zoo_test:build", "model.width=4"])
    validate(cfg)
    learner = build_learner(cfg.model, images_of((1, 28, 28)), CPU, Precision("fp32", CPU))
    assert count(learner) == (1 * 4 * 9 + 4) + (4 * 2 * 2 * 10 + 10)  # conv + linear on the 2x2 map
    for arch, needle in (("user_nets_zoo_test:NOT_A_BUILDER", "is a int, not a function"),
                         ("user_nets_zoo_test:buildd", "has no 'buildd'"),
                         ("no_such_package_here:build", "cannot be imported (ModuleNotFoundError")):
        with pytest.raises(ConfigError) as e:
            validate(compose_cfg(["dataset=mnist_offline", "model=convnet", f"model.arch={arch}"]))
        assert needle in str(e.value) and "model.arch=" in str(e.value) and "\n" not in str(e.value)
