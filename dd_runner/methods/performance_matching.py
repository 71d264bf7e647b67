"""Performance matching: Algorithm 1 of Wang et al. 2018 with multiple steps, epochs and learned lrs.

    1  initialise synthetic data x~ (noise or real examples) and step sizes lr~
    2  for each outer iteration:                                            (methods/loop.py)
    3      take a minibatch of real training data
    4      sample initial weights theta_0^(j) ~ p(theta_0)
    5-7    for each theta_0^(j): train on x~ for steps x epochs GD steps, measure the loss on the
           real batch (summed after every step with distill.accumulate_loss)
    8      meta-gradient of the summed real loss w.r.t. x~, lr~ (and learned labels) via the engine
    9      optimiser step on x~, lr~, labels; StepLR decay                   (methods/loop.py)

Under torchrun the nets of line 4 are split across processes and their meta-gradients summed
(dd_runner.engines.sharded.meta_gradient); every process then takes the same step.
"""

from __future__ import annotations

from dd_runner.context import Distilled, RunContext
from dd_runner.data.stream import RealBatches
from dd_runner.engines import ENGINES, EngineOptions, MetaGradient
from dd_runner.engines.sharded import meta_gradient as split_meta_gradient
from dd_runner.methods.captured_step import StepParts
from dd_runner.methods.loop import optimise
from dd_runner.synthetic.build import make_synthetic


def performance_matching(ctx: RunContext) -> Distilled:
    cfg, d = ctx.cfg, ctx.cfg.distill
    synth = make_synthetic(cfg, ctx.data, ctx.learner, cfg.seed)                      # 1
    engine = ENGINES.get(d.engine)
    batches = RealBatches(ctx.data.train, d.batch_size, cfg.seed, ctx.device)

    def inputs(iteration: int):  # host work: what a captured step copies into its static buffers
        return batches.next(), ctx.inits.train_nets(iteration, d.sample_nets)          # 3, 4

    def meta_gradient(step_inputs, loss_scale: float) -> MetaGradient:  # device work (distill.cuda_graph)
        real, thetas = step_inputs
        options = EngineOptions.from_config(d, loss_scale)
        return split_meta_gradient(engine, ctx.learner, thetas, synth, real, options)  # 5-8

    return optimise(ctx, synth, StepParts(inputs, meta_gradient), state={"batches": batches})  # 2, 9
