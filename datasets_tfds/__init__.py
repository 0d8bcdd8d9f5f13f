"""TFDS builders for the seven datasets of the transfer-learning benchmark (standalone package).

`import datasets_tfds` registers every builder, so any project can
`tfds.load("tfmedbench_drive", download_and_prepare_kwargs=...)` or run
`python -m datasets_tfds build tfmedbench_drive --manual_dir DIR` (or `tfds build --imports
datasets_tfds tfmedbench_drive --manual_dir DIR`). The package needs TensorFlow, TFDS, Pillow and
(for the two DICOM datasets) pydicom; it imports nothing from `tfmedbench`. Names carry the
`tfmedbench_` prefix so they never clash with the TFDS catalog (which already has e.g.
`chexpert`). See README.md beside this file.

  BUILDERS                      TFDS builder name -> module of this package
  DatasetError, ManualDataError the errors the builders raise (datasets_tfds.errors)
  <module>.LABELS               label names of the multi-label builders (chestxray14, chexpert)
  <module>.fake_data            writers of small trees in each dataset's exact official layout
"""

import importlib

from datasets_tfds.errors import DatasetError, ManualDataError

# TFDS builder name -> module in this package (each defines one registered builder).
BUILDERS = {
    "tfmedbench_nih_shenzhen": "nih_shenzhen",
    "tfmedbench_drive": "drive",
    "tfmedbench_chestxray14": "chestxray14",
    "tfmedbench_chexpert": "chexpert",
    "tfmedbench_montgomery": "montgomery",
    "tfmedbench_siim_pneumothorax": "siim_pneumothorax",
    "tfmedbench_rsna_pe": "rsna_pe",
}

for _module in BUILDERS.values():
    # Importing the module defines (and so registers) its GeneratorBasedBuilder subclass.
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["BUILDERS", "DatasetError", "ManualDataError"]
