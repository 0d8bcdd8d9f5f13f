"""`tfmedbench demo`: the whole path on synthetic data, no downloads.

Writes a synthetic dataset in the exact raw layout of NIH Shenzhen (the builder's own fake-data
writer, `datasets_tfds.nih_shenzhen.fake_data`: "TB" images carry bright blotches in the upper
lung fields), builds it with the same TFDS builder real data uses, fine-tunes a full-size
ResNet-50 (random init: no network, so no pre-trained weights) for a few epochs at reduced
resolution, and evaluates with the recipe's test-time TenCrop.
"""

from __future__ import annotations

import os


def run_demo(workdir, images=240, epochs=4, image_size=96, seed=0, verbose=1):
    from datasets_tfds.nih_shenzhen.fake_data import write_tree as write_shenzhen_tree
    from tfmedbench.train import fit

    workdir = os.path.abspath(workdir)
    manual_dir = os.path.join(workdir, "raw")
    if not os.path.isdir(os.path.join(manual_dir, "ChinaSet_AllFiles", "CXR_png")):
        print(f"[tfmedbench] writing {images} synthetic Shenzhen-layout images to {manual_dir}")
        write_shenzhen_tree(manual_dir, n_images=images, size=160, seed=seed)
    return fit(
        "TXC",
        "random",
        data_dir=os.path.join(workdir, "tensorflow_datasets"),
        manual_dir=manual_dir,
        output_dir=os.path.join(workdir, "run"),
        seed=seed,
        overrides={
            "epochs": epochs,
            "image_size": image_size,
            # TenCrop from a proportionally smaller resize (the recipe: 256 -> 224).
            "resize_size": round(image_size * 256 / 224),
            "batch_size": 16,
            "patience": epochs,
        },
        verbose=verbose,
    )
