"""Stanford CheXpert (task DXC5): builder `tfmedbench_chexpert`."""

from datasets_tfds.chexpert.chexpert_dataset_builder import TfmedbenchChexpert

__all__ = ["TfmedbenchChexpert"]
