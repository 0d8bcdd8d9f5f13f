"""The study floor: sweeps over (task, initialization, seed), their results store, statistics,
reports, continual pre-training and export."""
