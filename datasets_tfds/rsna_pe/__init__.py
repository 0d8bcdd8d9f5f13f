"""RSNA STR pulmonary embolism CT (task ECC): builder `tfmedbench_rsna_pe`."""

from datasets_tfds.rsna_pe.rsna_pe_dataset_builder import TfmedbenchRsnaPe

__all__ = ["TfmedbenchRsnaPe"]
