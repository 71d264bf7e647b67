"""The distilled set: synthetic inputs, learned step sizes and labels (set.py; text sequences, attention
labels and language-modelling targets in text.py; teacher labels in teacher.py), how a run builds it
(build.py), and its public, reusable form (distilled.py: `DistilledSet`, `load_distilled`; text_view.py)."""
