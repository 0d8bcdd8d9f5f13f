"""SIIM-ACR pneumothorax segmentation (task PXS): builder `tfmedbench_siim_pneumothorax`."""

from datasets_tfds.siim_pneumothorax.siim_pneumothorax_dataset_builder import (
    TfmedbenchSiimPneumothorax,
)

__all__ = ["TfmedbenchSiimPneumothorax"]
