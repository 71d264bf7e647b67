"""The distilled set: synthetic inputs, learned step sizes and labels (set.py; text sequences, attention
labels and language-modelling targets in text.py; teacher labels in teacher.py), how a run builds it
(build.py), and its text view (text_view.py). Its public, reusable form is dd_runner/reuse/."""
