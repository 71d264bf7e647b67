"""`dd-run --help`: the config groups and their options, read from the shipped conf/ tree, with the
first comment line of each option as its description."""

from __future__ import annotations

from importlib.resources import files

USAGE = """usage: dd-run [-m] [group=option ...] [key=value ...]

  dd-run                                        MNIST, LeNet, random init, hard labels
  dd-run init=fixed distill.steps=1 distill.epochs=3 distill.ipc=1
  dd-run -m init=fixed,random seed=0,1,2        a sweep (one job per combination)
  dd-run dataset=agnews model=distilbert        text: AG News x DistilBERT (english_quotes x gpt_neo: LM)
  dd-run resume=outputs/runs/<date>/<time>      continue a stopped run
  dd-run -m hydra/launcher=submitit_slurm ...   the sweep as Slurm jobs (pip install 'dd-runner[cluster]')
  dd-report outputs/multirun/<date>/<time>      a sweep's table, report.csv and report.png
  torchrun --nproc_per_node=K -m dd_runner ...  one run over K processes (GPUs)
  dd-run --cfg job [overrides]                  print the composed config and exit
  dd-run --hydra-help                           Hydra's own flags
"""


def _describe(path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ").strip()
    return ""


def help_text() -> str:
    conf = files("dd_runner.conf")
    lines = [USAGE, "config groups (group=option):"]
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and p.name not in ("hydra", "__pycache__")):
        lines.append(f"  {group.name}")
        for option in sorted(p for p in group.iterdir() if p.name.endswith(".yaml")):
            lines.append(f"    {option.name[:-5]:<22} {_describe(option)}".rstrip())
    lines.append("\nkeys (key=value): see `dd-run --cfg job` and the README; a misspelt key lists the valid ones.")
    return "\n".join(lines)
