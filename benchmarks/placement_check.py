"""On a GPU host: the input pipelines allocate no GPU memory (every tf.data op stays on the host).

  python benchmarks/placement_check.py

Builds fixture trees (TXC: uncached fused-decode classification; LXS: TF-native segmentation
augmentation with its XLA-compiled pieces; VFS: SA-UNet expansion), resets TensorFlow's GPU
memory statistics, iterates each training pipeline for a few batches and reports the GPU
memory TensorFlow allocated meanwhile (peak bytes). Any op placed on the GPU allocates its
output there, so 0 means the pipelines ran on the host. Prints one line per pipeline and exits
with status 1 if any allocated. On a machine without a GPU it says so and exits with status 2.
The CPU-side counterpart is tfmedbench/data/placement_test.py (no device annotations).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = {  # task: (datasets_tfds module, fake_data.write_tree kwargs, recipe overrides)
    "TXC": ("nih_shenzhen", {"n_images": 40, "size": 256}, dict(cache="none", batch_size=8)),
    "LXS": ("montgomery", {"n_per_class": 10}, dict(batch_size=8)),
    "VFS": ("drive", {"n_train": 6, "n_test": 2}, dict(batch_size=4)),
}


def main():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("placement_check: no GPU visible to TensorFlow; nothing to check")
        return 2
    from tfmedbench.data import pipeline, prepare
    from tfmedbench.tasks import get_recipe

    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for task, (module, kwargs, overrides) in CASES.items():
            raw = os.path.join(tmp, task, "raw")
            importlib.import_module(f"datasets_tfds.{module}.fake_data").write_tree(raw, **kwargs)
            recipe = get_recipe(task, **overrides)
            builder = prepare.build(recipe.builder, raw, os.path.join(tmp, task, "tfds"),
                                    verbose=False)  # fmt: skip
            ds = pipeline.make_dataset(recipe, builder, "train", training=True,
                                       batch_size=recipe.batch_size)  # fmt: skip
            tf.config.experimental.reset_memory_stats("GPU:0")
            before = tf.config.experimental.get_memory_info("GPU:0")["current"]
            batches = sum(1 for _ in ds.take(4))
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] - before
            failed |= peak > 0
            print(f"placement_check {task}: {batches} batches, GPU memory allocated by the "
                  f"pipeline: {peak} bytes ({'OK: host only' if peak <= 0 else 'ON THE GPU'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
