"""The synthetic set a run starts from: sized by distill.*, labelled by labels.*, initialised by
distill.init_from. Images get a `SyntheticSet`; text gets input-embedding sequences (synthetic/text.py)."""

from __future__ import annotations

from dd_runner.synthetic.set import SyntheticSet, initialise_data, synthetic_options
from dd_runner.synthetic.text import make_text_synthetic


def make_synthetic(cfg, data, learner, seed: int) -> SyntheticSet:
    """The SyntheticSet a run starts from, sized by distill.* and initialised by distill.init_from."""
    if data.modality == "text":  # inputs_embeds sequences, attention labels, language-modelling targets
        return make_text_synthetic(cfg, data, learner, seed)
    d = cfg.distill
    synth = SyntheticSet(d.steps, d.epochs, data.num_classes, d.ipc, learner.synthetic_shape(data, d),
                         **synthetic_options(cfg, learner))
    initialise_data(synth, d.init_from, data, learner, seed)
    return synth.to(learner.device, learner.dtype)
