"""NIH Montgomery lung masks (task LXS): builder `tfmedbench_montgomery`."""

from datasets_tfds.montgomery.montgomery_dataset_builder import TfmedbenchMontgomery

__all__ = ["TfmedbenchMontgomery"]
