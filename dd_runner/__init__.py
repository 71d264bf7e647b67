"""dd-runner: config-driven dataset distillation experiments.

    dd-run dataset=mnist model=lenet init=fixed distill.steps=1 distill.epochs=3
    >>> from dd_runner import load_distilled
    >>> distilled = load_distilled("outputs/runs/.../distilled.safetensors")
    >>> net = distilled.model()          # the network it was distilled for, at its theta_0
    >>> distilled.train(net)
    >>> distilled.evaluate(net, distilled.test_data())["acc"]
"""

__version__ = "0.1.0"


def load_distilled(path):
    """Load a `distilled.safetensors` written by dd-run (see dd_runner.reuse.distilled.DistilledSet)."""
    from dd_runner.reuse.distilled import load_distilled as _load

    return _load(path)


def run(cfg):
    """Run one job from a composed config; returns its metrics (see dd_runner.run.run)."""
    from dd_runner.run import run as _run

    return _run(cfg)


__all__ = ["load_distilled", "run", "__version__"]
