"""Meta-gradient engines: d(real loss after the unrolled inner steps) / d(synthetic set).

Every engine has the signature `engine(learner, thetas, synth, real, options) -> MetaGradient` and
returns the gradient averaged over the sampled initialisations `thetas`, aligned with
`synth.learnable()`. All engines compute the same gradient (tests check this in float64); they differ
in time and memory. Never put torch.compile on this path: it silently drops the second-order terms.
"""

from dd_runner.core.registry import Registry
from dd_runner.engines.base import EngineOptions, MetaGradient  # noqa: F401

ENGINES = Registry("distill.engine")
ENGINES.add("unroll", "dd_runner.engines.unroll:unroll")
ENGINES.add("recompute", "dd_runner.engines.recompute:recompute")
ENGINES.add("vmap", "dd_runner.engines.vmap:vmap_unroll")
ENGINES.add("vmap_recompute", "dd_runner.engines.vmap:vmap_recompute")
