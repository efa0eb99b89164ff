"""Stage 4, evaluation: scores of trained pipelines on held-out articles (``evaluation``),
inter-annotator agreement (``agreement``), cross-validation and learning curves
(``experiments``), speed and memory (``benchmark``) and the backbone's layer probe
(``probe``)."""
