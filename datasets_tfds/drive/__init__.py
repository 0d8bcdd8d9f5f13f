"""DRIVE retinal vessels (task VFS): builder `tfmedbench_drive`."""

from datasets_tfds.drive.drive_dataset_builder import TfmedbenchDrive

__all__ = ["TfmedbenchDrive"]
