"""The cases of scripts/bench.py: what is measured (plan.py), how one case is measured in its own process
(cases.py, memory.py) and how the results are tabulated (table.py)."""
