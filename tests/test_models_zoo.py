"""The benchmark architectures (mlp, alexnet, vgg11, resnet18): each builds from its YAML for 28x28 and
32x32 images with the papers' sizes, trains on real MNIST, batches under vmap where it can (batch norm
cannot) and gives every evaluation network its own batch-norm statistics."""

from __future__ import annotations

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

# parameter counts of the papers' networks (DC's code) on 3x32x32 images, 10 classes
PAPER_SIZES = {"mlp": 411_146, "alexnet": 1_872_202, "vgg11": 9_231_114, "resnet18": 11_173_962}


@pytest.fixture(scope="module")
def mnist():
    return load_data(compose_cfg(["dataset=mnist_offline", *MNIST_OFFLINE]).dataset)


def learner_for(name, data, *extra):
    return build_learner(compose_cfg([f"model={name}", *extra]).model, data, CPU, Precision("fp32", CPU))


@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_sized_as_the_papers_for_28_and_32_pixel_images(name):
    cifar = SimpleNamespace(modality="image", name="cifar", example_shape=(3, 32, 32), num_classes=10)
    learner = learner_for(name, cifar)
    assert sum(p.numel() for p in learner.draw(0)) == PAPER_SIZES[name]
    assert learner.module(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    mnist_like = SimpleNamespace(modality="image", name="mnist", example_shape=(1, 28, 28), num_classes=10)
    assert learner_for(name, mnist_like).module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


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
