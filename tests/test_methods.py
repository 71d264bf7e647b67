"""The method families on tiny real data: each objective decreases; gradient matching's distance equals a
hand computation; trajectory matching reads the experts that mode=experts writes; teacher labels follow
the knowledge-distillation formula; the coresets pick what their definitions say."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from dd_runner.data.augment import SiameseAugment
from dd_runner.runtime.checkpoint import Checkpointer
from dd_runner.eval.baselines import herding_order, kcenter_order
from dd_runner.methods import METHODS
from dd_runner.methods.gradient_matching import layerwise_distance
from dd_runner.run import build_context, run
from dd_runner.models.losses import kd_loss
from dd_runner.runtime.tracking import Tracker

from conftest import TINY, compose_cfg

# A small ConvNet keeps the matching methods cheap on CPU while exercising the real architecture.
SMALL_CONVNET = ["model=convnet", "model.width=8", "model.depth=2"]


class Recorder(Tracker):
    def __init__(self):
        self.losses = []

    def log(self, metrics, step=None):
        if "distill/loss" in metrics:
            self.losses.append(metrics["distill/loss"])


def objective_history(overrides, tmp_path):
    cfg = compose_cfg(overrides + ["logger.log_every=1", "eval.every=0", "checkpoint.every=0"])
    tracker = Recorder()
    ctx = build_context(cfg, tmp_path, tracker, Checkpointer(tmp_path, cfg, 0))
    METHODS.get(cfg.method.name)(ctx)
    return tracker.losses


@pytest.mark.parametrize("method, extra", [
    ("gradient_matching", ["method.batch_real=64", "distill.lr=1.0"]),
    ("gradient_matching", ["method.batch_real=64", "distill.lr=3.0", "augment=dsa", "method.outer_loop=2"]),
    ("distribution_matching", ["method.batch_real=64"]),
    ("distribution_matching", ["method.batch_real=64", "augment=dsa"]),
])
def test_matching_objectives_decrease(mnist_overrides, tmp_path, method, extra):
    losses = objective_history(mnist_overrides + TINY + SMALL_CONVNET + [
        f"method={method}", "init=fixed", "distill.iterations=24", "distill.ipc=2", *extra], tmp_path)
    assert len(losses) == 24 and all(math.isfinite(x) for x in losses)
    assert statistics.fmean(losses[-6:]) < 0.9 * statistics.fmean(losses[:6]), losses


def test_layerwise_distance_equals_a_hand_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x_real, y_real = torch.randn(16, 4), torch.randint(0, 2, (16,))
    x_syn, y_syn = torch.randn(2, 4), torch.tensor([0, 1])
    g_real = torch.autograd.grad(F.cross_entropy(net(x_real), y_real), list(net.parameters()))
    g_syn = torch.autograd.grad(F.cross_entropy(net(x_syn), y_syn), list(net.parameters()))
    by_hand = 0.0
    for gs, gr in zip(g_syn, g_real):
        if gs.dim() == 1:  # biases do not count
            continue
        for row_s, row_r in zip(gs.tolist(), gr.tolist()):  # one output unit per row
            dot = sum(a * b for a, b in zip(row_s, row_r))
            norms = math.sqrt(sum(a * a for a in row_s)) * math.sqrt(sum(b * b for b in row_r))
            by_hand += 1 - dot / (norms + 1e-6)
    assert layerwise_distance(g_syn, g_real).item() == pytest.approx(by_hand, rel=1e-5)


def test_trajectory_matching_reads_the_experts_mode_experts_writes(mnist_overrides, tmp_path):
    experts = run(compose_cfg(mnist_overrides + TINY + SMALL_CONVNET + [
        "mode=experts", "experts.count=2", "experts.epochs=2", "experts.batch_size=128",
        f"output_dir={tmp_path / 'experts'}"]))
    assert experts["experts/count"] == 2 and experts["experts/test_acc_mean"] > 0.5
    files = sorted((tmp_path / "experts" / "experts").glob("expert_*.safetensors"))
    assert [f.name for f in files] == ["expert_000.safetensors", "expert_001.safetensors"]
    with safe_open(str(files[0]), "pt") as f:
        assert {"epoch_000/classifier.weight", "epoch_002/classifier.weight"} <= set(f.keys())
        assert f.metadata()["model"] == "convnet"
    losses = objective_history(mnist_overrides + TINY + SMALL_CONVNET + [
        "method=trajectory_matching", f"method.experts={tmp_path / 'experts' / 'experts'}",
        "method.expert_epochs=1", "method.max_start_epoch=1", "init=fixed", "distill.epochs=5",
        "distill.iterations=20", "distill.lr=1000", "distill.ipc=2"], tmp_path / "mtt")
    assert statistics.fmean(losses[-5:]) < statistics.fmean(losses[:5]), losses


def test_teacher_labels_follow_the_kd_formula():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 10), torch.randn(5, 10)
    hard = F.one_hot(torch.randint(0, 10, (5,)), 10).float()
    T, alpha = torch.tensor(4.0), torch.tensor(0.7)
    probs = F.softmax(teacher / T, -1)
    expected = (alpha * T ** 2 * F.kl_div(F.log_softmax(student / T, -1), probs, reduction="batchmean")
                + (1 - alpha) * F.cross_entropy(student, hard.argmax(-1)))
    assert kd_loss(student, hard, probs, T, alpha).item() == pytest.approx(expected.item(), rel=1e-6)
    # T^2 keeps the soft term's gradient on the hard term's scale as T grows
    grads = []
    for t in (2.0, 8.0):
        z = student.clone().requires_grad_()
        p = F.softmax(teacher / t, -1)
        kd_loss(z, hard, p, torch.tensor(t), torch.tensor(1.0)).backward()
        grads.append(z.grad.norm().item())
    assert 0.25 < grads[1] / grads[0] < 4  # without T^2 the ratio would be about (2/8)^2 = 1/16


def test_teacher_labels_end_to_end(mnist_overrides, tmp_path):
    run(compose_cfg(mnist_overrides + TINY + ["mode=train", f"output_dir={tmp_path / 'teacher'}"]))
    teacher = tmp_path / "teacher" / "model.safetensors"
    metrics = run(compose_cfg(mnist_overrides + TINY + [
        "labels=teacher", f"labels.teacher={teacher}", "init=fixed", "distill.steps=1",
        "eval.baselines=[random_real]", f"output_dir={tmp_path / 'run'}"]))
    assert 0 <= metrics["test/acc_mean"] <= 1 and "baselines/random_real/acc_mean" in metrics
    with safe_open(str(tmp_path / "run" / "distilled.safetensors"), "pt") as f:
        probs = f.get_tensor("teacher_probs")
        assert f.metadata()["label_type"] == "teacher" and f.metadata()["temperature"] == "4.0"
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
    # the set travels with its teacher's targets: the public API reproduces the figure without the teacher
    from dd_runner import load_distilled

    d = load_distilled(tmp_path / "run" / "distilled.safetensors")
    acc = d.evaluate(d.train(d.model()), d.test_data())["acc"]
    assert acc == pytest.approx(metrics["test/acc_mean"], abs=1e-3)


def test_coresets_pick_what_their_definitions_say():
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 5.0], [0.1, 0.1]], dtype=torch.float64)
    order = herding_order(features, 3)
    assert order[0] == 4  # (0.1, 0.1) alone is closest to the mean (0.02, 1.02)... after the first pick
    assert len(set(order.tolist())) == 3
    centers = kcenter_order(features, 3)
    assert centers[1] == 3  # the farthest point from the first center comes next
    assert len(set(centers.tolist())) == 3


def test_siamese_augmentation_is_shared_and_differentiable():
    cfg = compose_cfg(["augment=dsa"]).augment
    augment = SiameseAugment(cfg)
    images = torch.randn(6, 1, 28, 28)
    for seed in range(8):
        both = augment(images, seed)
        alone = augment(images[:2], seed)  # another batch, same seed: the same transform
        torch.testing.assert_close(both[:2], alone)
    x = images[:2].clone().requires_grad_()
    augment(x, 3).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_every_method_reports_the_same_metrics(mnist_overrides, tmp_path):
    keys = None
    for method in ("performance_matching", "gradient_matching", "distribution_matching"):
        metrics = run(compose_cfg(mnist_overrides + TINY + SMALL_CONVNET + [
            f"method={method}", "distill.iterations=2", "eval.schedule=train", "eval.train_epochs=2",
            "eval.baselines=[random_real,herding,kcenter]", "method.batch_real=16" if method != "performance_matching" else "seed=0",
            f"output_dir={tmp_path / method}"]))
        numeric = {k for k in metrics if k.startswith(("test/", "baselines/", "val/"))}
        keys = numeric if keys is None else keys
        assert numeric == keys, method
        if method != "performance_matching":  # eval.every=0, select=last: the last set is the one evaluated
            assert metrics["distill/kept_iteration"] == 2
        assert (tmp_path / method / "distilled.safetensors").is_file()
    assert {"baselines/herding/acc_mean", "baselines/kcenter/acc_mean"} <= keys


def test_baselines_mode_gives_the_baselines_of_a_distill_run(mnist_overrides, tmp_path):
    """mode=baselines evaluates eval.baselines alone, by the same nets, lrs and selections as a distill run
    of the same seed and budget: a comparison can run its baselines as separate processes."""
    common = mnist_overrides + TINY + SMALL_CONVNET + [
        "method=distribution_matching", "distill.iterations=2", "method.batch_real=16", "distill.ipc=2",
        "eval.schedule=train", "eval.train_epochs=3", "eval.baselines=[random_real,herding,kmeans]"]
    distilled = run(compose_cfg(common + [f"output_dir={tmp_path / 'distill'}"]))
    alone = run(compose_cfg(common + ["mode=baselines", f"output_dir={tmp_path / 'baselines'}"]))
    figures = {k: v for k, v in distilled.items() if k.startswith("baselines/")}
    assert {"baselines/herding/acc_mean", "baselines/kmeans/acc_mean"} <= set(figures)
    assert {k: v for k, v in alone.items() if k.startswith("baselines/")} == figures
    assert not any(k.startswith("test/") for k in alone)  # no distilled set was made or judged
    assert not (tmp_path / "baselines" / "distilled.safetensors").exists()
