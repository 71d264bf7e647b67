"""Distillation methods, selected by the `method` config group.

A method takes the RunContext and returns a `Distilled` result (the SyntheticSet and its history); the
evaluation protocol and the artefacts are shared by every method. New families (gradient, distribution
or trajectory matching) join as new modules registered here, not as branches inside an existing one.
"""

from dd_runner.core.registry import Registry

METHODS = Registry("method")
METHODS.add("performance_matching", "dd_runner.methods.performance_matching:performance_matching")
METHODS.add("gradient_matching", "dd_runner.methods.gradient_matching:gradient_matching")
METHODS.add("distribution_matching", "dd_runner.methods.distribution_matching:distribution_matching")
METHODS.add("trajectory_matching", "dd_runner.methods.trajectory_matching:trajectory_matching")
METHODS.add("logit_match", "dd_runner.methods.logit_match:logit_match")
