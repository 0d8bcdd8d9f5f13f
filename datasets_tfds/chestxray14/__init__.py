"""NIH ChestX-ray14 (task DXC14): builder `tfmedbench_chestxray14`."""

from datasets_tfds.chestxray14.chestxray14_dataset_builder import TfmedbenchChestxray14

__all__ = ["TfmedbenchChestxray14"]
