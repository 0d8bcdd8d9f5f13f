"""TFDS builders for the seven datasets of the transfer-learning benchmark.

`import datasets_tfds` registers every builder, so any project can
`tfds.load("tfmedbench_drive", download_and_prepare_kwargs=...)` or run
`tfds build --imports datasets_tfds tfmedbench_drive --manual_dir DIR`.
Names carry the `tfmedbench_` prefix so they never clash with the TFDS catalog (which already
has e.g. `chexpert`).
"""

import importlib

# Benchmark task code -> (TFDS builder name, module in this package).
TASK_BUILDERS = {
    "TXC": ("tfmedbench_nih_shenzhen", "nih_shenzhen"),
    "VFS": ("tfmedbench_drive", "drive"),
    "DXC14": ("tfmedbench_chestxray14", "chestxray14"),
    "DXC5": ("tfmedbench_chexpert", "chexpert"),
    "LXS": ("tfmedbench_montgomery", "montgomery"),
    "PXS": ("tfmedbench_siim_pneumothorax", "siim_pneumothorax"),
    "ECC": ("tfmedbench_rsna_pe", "rsna_pe"),
}

for _name, _module in TASK_BUILDERS.values():
    # Importing the module defines (and so registers) its GeneratorBasedBuilder subclass.
    importlib.import_module(f"{__name__}.{_module}")
