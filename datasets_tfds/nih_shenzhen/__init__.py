"""NIH Shenzhen chest X-rays (task TXC): builder `tfmedbench_nih_shenzhen`."""

from datasets_tfds.nih_shenzhen.nih_shenzhen_dataset_builder import TfmedbenchNihShenzhen

__all__ = ["TfmedbenchNihShenzhen"]
