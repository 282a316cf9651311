"""Quality metrics of tracking outputs against ground truth (see :mod:`mapose.evaluation.tracks`)."""
