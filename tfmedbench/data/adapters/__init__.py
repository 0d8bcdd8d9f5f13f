"""Per-dataset adapters: a TFDS example dict -> (image, target) for the task pipeline.

Each adapter module defines `adapt(example, recipe, seed=0) -> (image, target)` where
  image:  uint8 or uint16 tensor [H, W, C], C in {1, 3} (grey is expanded to RGB later);
  target: float32 [num_outputs] for classification, float32 [H, W, 1] in {0, 1} for
          segmentation (same H, W as the image).
and may define `filter_fn(example, recipe) -> bool tensor` to drop examples (e.g. lateral views)
with `filter_active(recipe) -> bool` saying whether it applies to a recipe.
Adapters run inside tf.data: TF ops only. `adapt` must be a pure function of (example, recipe,
seed) -- the pipeline may cache its output (seed = the run's seed; CheXpert's LSR labels use it).
"""

import importlib

# TFDS builder name -> adapter module (in this package).
ADAPTERS = {
    "tfmedbench_nih_shenzhen": "shenzhen",
    "tfmedbench_drive": "drive",
    "tfmedbench_chestxray14": "chestxray14",
    "tfmedbench_chexpert": "chexpert",
    "tfmedbench_montgomery": "montgomery",
    "tfmedbench_siim_pneumothorax": "siim_pneumothorax",
    "tfmedbench_rsna_pe": "rsna_pe",
}


def get_adapter(builder_name):
    if builder_name not in ADAPTERS:
        raise KeyError(f"no adapter for dataset {builder_name!r}; known: {sorted(ADAPTERS)}")
    return importlib.import_module(f"{__name__}.{ADAPTERS[builder_name]}")
