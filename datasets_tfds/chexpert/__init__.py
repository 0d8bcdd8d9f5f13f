"""Stanford CheXpert (task DXC5): builder `tfmedbench_chexpert`; `LABELS`: its 14 observations."""

from datasets_tfds.chexpert.chexpert_dataset_builder import LABELS, TfmedbenchChexpert

__all__ = ["LABELS", "TfmedbenchChexpert"]
