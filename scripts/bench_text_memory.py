"""Time per outer step and peak memory of the text meta-gradient at real model size: DistilBERT-base
(AG News shape: 4 synthetic articles, 64 tokens) and GPT-Neo-125M (english_quotes shape: 4 sequences of 16
tokens per step, 10+ steps), unroll vs recompute, fp32 vs bf16. Random weights from the models' recorded
architectures (conf/model/*.yaml), random token ids as the real batch: no download, no data needed.

    python scripts/bench_text_memory.py                      # on the GPU (the figures the README quotes)
    python scripts/bench_text_memory.py --tiny --device cpu  # a seconds-long smoke run of the same code

Each case is one outer iteration of performance matching (warm-up excluded): the engine's meta-gradient
for one sampled network on a real batch. Peak memory is torch.cuda.max_memory_allocated on CUDA.
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from dd_runner.device import Precision
from dd_runner.engines import ENGINES, EngineOptions
from dd_runner.data.bundle import Split
from dd_runner.synthetic import SyntheticSet

TINY = {"distilbert": dict(vocab_size=1000, dim=32, hidden_dim=64, n_layers=2, n_heads=2),
        "gpt_neo": dict(vocab_size=1000, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                        attention_types=[[["global"], 2]])}
CASES = [  # model, steps, examples per step, synthetic length, real batch, real length
    ("distilbert", 1, 4, 64, 64, 64),
    ("gpt_neo", 10, 4, 16, 32, 64),
    ("gpt_neo", 20, 4, 16, 32, 64),
]


def learner_for(model: str, device, precision, tiny: bool, seq_len: int):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from dd_runner.models.transformer import CausalLMLearner, TextClassifierLearner

    arch = OmegaConf.to_container(OmegaConf.load(f"conf/model/{model}.yaml").architecture)
    arch.update(TINY[model] if tiny else {})
    config = AutoConfig.for_model(arch.pop("model_type"), **arch)
    if model == "gpt_neo":
        config.embed_dropout = config.attention_dropout = config.resid_dropout = 0.0
        module = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        cls = CausalLMLearner
    else:
        config.dropout = config.attention_dropout = config.seq_classif_dropout = 0.0
        config.num_labels = 4
        module = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
        cls = TextClassifierLearner
    names = [n for n, _ in module.named_parameters()]
    return cls(module, device, precision, head=names, pretrained=False, seq_len=seq_len), config.vocab_size


def measure(model, steps, per_step, seq_len, batch, length, engine, precision_name, device, tiny):
    precision = Precision(precision_name, device)
    learner, vocab = learner_for(model, device, precision, tiny, seq_len)
    gen = torch.Generator().manual_seed(0)
    hidden = learner.embedding.shape[1]
    if model == "gpt_neo":
        targets = torch.nn.functional.one_hot(torch.randint(0, vocab, (steps, per_step, seq_len), generator=gen), vocab)
        synth = SyntheticSet(steps, 1, 1, per_step, (seq_len, hidden), initial_targets=targets, init_lr=0.01)
        real = Split(torch.randint(0, vocab, (batch, length), generator=gen), None, torch.ones(batch, length, dtype=torch.long))
    else:
        synth = SyntheticSet(steps, 1, 4, per_step // 4, (seq_len, hidden), init_lr=0.5)
        real = Split(torch.randint(0, vocab, (batch, length), generator=gen), torch.randint(0, 4, (batch,), generator=gen),
                     torch.ones(batch, length, dtype=torch.long))
    synth = synth.to(device)
    real = real.to(device)
    theta = [learner.draw(1)]
    run = ENGINES.get(engine)
    run(learner, theta, synth, real, EngineOptions())  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    run(learner, theta, synth, real, EngineOptions())
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    params = sum(p.numel() for p in theta[0]) / 1e6
    del learner, synth, theta
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return params, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny models (a smoke run of the same code)")
    parser.add_argument("--engines", nargs="+", default=["unroll", "recompute"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    device = torch.device(args.device)
    table = Table(title=f"text meta-gradient, one outer step ({device}{', tiny models' if args.tiny else ''})")
    for col in ("model", "params (M)", "steps", "synthetic", "real batch", "engine", "precision", "s / step", "peak GiB"):
        table.add_column(col, justify="left" if col in ("model", "engine", "precision") else "right")
    for model, steps, per_step, seq_len, batch, length in CASES:
        for engine in args.engines:
            for precision in args.precisions:
                try:
                    params, seconds, peak = measure(model, steps, per_step, seq_len, batch, length, engine, precision,
                                                    device, args.tiny)
                    cells = (f"{params:.0f}" if params >= 1 else f"{params:.3f}", f"{seconds:.2f}", f"{peak:.1f}")
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    cells = ("", "out of memory", "")
                table.add_row(model, cells[0], str(steps), f"{per_step} x {seq_len}", f"{batch} x {length}", engine,
                              precision, cells[1], cells[2])
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
