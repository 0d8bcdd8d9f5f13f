"""NIH ChestX-ray14 (task DXC14): builder `tfmedbench_chestxray14`; `LABELS`: its 14 findings."""

from datasets_tfds.chestxray14.chestxray14_dataset_builder import LABELS, TfmedbenchChestxray14

__all__ = ["LABELS", "TfmedbenchChestxray14"]
