"""The 7 target tasks of the benchmark as declarative, overridable recipes.

Numbers follow the paper (Hosseinzadeh Taher et al., 2021, Appendix B) and the original code
(github.com/MR-HosseinzadehTaher/BenchmarkTransferLearning). Every field can be overridden
(`Recipe.override`, `tfmedbench fit --set key=value`); the resolved recipe is saved with each run.
"""

from __future__ import annotations

import dataclasses
import json

from tfmedbench.errors import UserError


class RecipeError(UserError, KeyError, ValueError):
    """Unknown task or recipe field, or a value of the wrong type."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])

CHESTXRAY14_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)  # fmt: skip

# CheXpert's 14 observations in the order of its CSV columns.
CHEXPERT_LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)  # fmt: skip
CHEXPERT_SCORED = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
SEG_AUGMENT_BACKENDS = ("tf", "albumentations")
UNCERTAINTY_POLICIES = ("u-ones", "u-zeros", "lsr-ones", "lsr-zeros")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Recipe:
    code: str
    title: str
    builder: str  # TFDS builder name in datasets_tfds
    kind: str  # "classification" | "segmentation"
    labels: tuple  # output names (one per sigmoid output / mask channel)
    metric: str  # "auc" | "dice"
    image_size: int
    loss: str  # "bce" | "dice"
    optimizer: str = "adam"
    lr: float = 2e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "plateau"  # "plateau" | "cosine" | "linear" | "constant"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    batch_size: int = 64  # per replica
    epochs: int = 200  # max epochs
    patience: int = 10  # early stopping on validation loss
    augmentation: str = "none"  # "xray_cls" | "xray_seg" | "none"
    # xray_seg's implementation: "tf" (TF ops, parallel in tf.data; same transforms and parameter
    # distributions, outputs equal albumentations' for equal parameters) | "albumentations" (the
    # library itself via tf.numpy_function, serialised by the GIL).
    seg_augment: str = "tf"
    test_time: str = "resize"  # "tencrop" (resize 256 -> TenCrop 224, mean) | "resize"
    resize_size: int = 256  # TenCrop's resize (the original: 256 for a 224 crop)
    normalization: str = "imagenet"
    scored_labels: tuple = ()  # subset of `labels` that enters the score (DXC5); () = all
    uncertainty_policy: str = ""  # DXC5 only
    frontal_only: bool = False  # DXC5/DXC14: keep frontal views only
    # Backbone size: ResNet-50 by default; tests use tiny configurations of the same topology.
    depths: tuple = (3, 4, 6, 3)
    width: int = 64
    shuffle_buffer: int = 2048
    cache: str = "auto"  # "auto" (cache decoded data when small) | "memory" | "none"

    @property
    def num_outputs(self):
        return len(self.labels)

    @property
    def scored(self):
        return self.scored_labels or self.labels

    def override(self, **changes):
        """Return a copy with `changes` applied; unknown keys fail listing the valid ones."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise RecipeError(
                f"unknown recipe field(s) {unknown}; valid fields: {sorted(fields)}"
            )
        coerced = {}
        for key, value in changes.items():
            if value is None:
                continue
            current = getattr(self, key)
            coerced[key] = coerce(value, current, key)
        recipe = dataclasses.replace(self, **coerced)
        recipe.validate()
        return recipe

    def validate(self):
        if self.kind not in ("classification", "segmentation"):
            raise RecipeError(f"{self.code}: kind must be classification|segmentation")
        if self.uncertainty_policy and self.uncertainty_policy not in UNCERTAINTY_POLICIES:
            raise RecipeError(
                f"{self.code}: uncertainty_policy {self.uncertainty_policy!r} is not one of "
                f"{UNCERTAINTY_POLICIES}"
            )
        if self.kind == "segmentation" and self.image_size % 32:
            raise RecipeError(
                f"{self.code}: image_size {self.image_size} must be a multiple of 32 for the U-Net"
            )
        if self.seg_augment not in SEG_AUGMENT_BACKENDS:
            raise RecipeError(
                f"{self.code}: seg_augment {self.seg_augment!r} is not one of "
                f"{SEG_AUGMENT_BACKENDS}"
            )
        if self.schedule not in ("plateau", "cosine", "linear", "constant"):
            raise RecipeError(f"{self.code}: unknown schedule {self.schedule!r}")
        missing = set(self.scored_labels) - set(self.labels)
        if missing:
            raise RecipeError(f"{self.code}: scored labels {sorted(missing)} not in labels")

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        for key in ("labels", "scored_labels", "depths"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def coerce(value, current, key):
    """Convert a CLI string (or any value) to the type of the field it overrides."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(current, tuple) else value
    try:
        if isinstance(current, bool):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            parts = [p for p in value.split(",") if p]
            if current and isinstance(current[0], int):
                return tuple(int(p) for p in parts)
            return tuple(parts)
    except ValueError:
        raise RecipeError(
            f"recipe field {key!r} expects {type(current).__name__}, got {value!r}"
        ) from None
    return value


_XRAY_CLS = dict(
    kind="classification",
    metric="auc",
    image_size=224,
    loss="bce",
    lr=2e-4,
    schedule="plateau",
    plateau_factor=0.5,
    plateau_patience=5,
    batch_size=64,
    epochs=200,
    patience=10,
    augmentation="xray_cls",
    test_time="tencrop",
)

_SEG = dict(
    kind="segmentation",
    labels=("mask",),
    metric="dice",
    lr=1e-3,
    schedule="cosine",
    epochs=200,
    patience=20,
    test_time="resize",
)

RECIPES = {
    r.code: r
    for r in (
        Recipe(
            code="ECC",
            title="RSNA STR pulmonary embolism, slice-level PE detection (CT)",
            builder="tfmedbench_rsna_pe",
            kind="classification",
            labels=("pe_present_on_image",),
            metric="auc",
            image_size=576,
            loss="bce",
            lr=4e-4,
            schedule="linear",
            batch_size=32,
            epochs=1,
            patience=1,
            augmentation="none",
            test_time="resize",
        ),
        Recipe(
            code="DXC14",
            title="NIH ChestX-ray14, 14 thorax diseases",
            builder="tfmedbench_chestxray14",
            labels=CHESTXRAY14_LABELS,
            **_XRAY_CLS,
        ),
        Recipe(
            code="DXC5",
            title="CheXpert, scored on 5 findings",
            builder="tfmedbench_chexpert",
            labels=CHEXPERT_LABELS,
            scored_labels=CHEXPERT_SCORED,
            uncertainty_policy="lsr-ones",
            **_XRAY_CLS,
        ),
        Recipe(
            code="TXC",
            title="NIH Shenzhen, tuberculosis detection",
            builder="tfmedbench_nih_shenzhen",
            labels=("tuberculosis",),
            **_XRAY_CLS,
        ),
        Recipe(
            code="LXS",
            title="NIH Montgomery, lung segmentation",
            builder="tfmedbench_montgomery",
            image_size=224,
            loss="dice",
            batch_size=16,
            augmentation="xray_seg",
            **_SEG,
        ),
        Recipe(
            code="VFS",
            title="DRIVE, retinal vessel segmentation",
            builder="tfmedbench_drive",
            image_size=512,
            loss="bce",
            batch_size=4,
            augmentation="none",
            **_SEG,
        ),
        Recipe(
            code="PXS",
            title="SIIM-ACR pneumothorax segmentation",
            builder="tfmedbench_siim_pneumothorax",
            image_size=224,
            loss="dice",
            batch_size=16,
            augmentation="xray_seg",
            **_SEG,
        ),
    )
}


def get_recipe(code, **overrides):
    """The recipe of task `code` (case-insensitive), with `overrides` applied."""
    key = str(code).upper()
    if key not in RECIPES:
        raise RecipeError(f"unknown task {code!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[key]
    recipe.validate()
    return recipe.override(**overrides) if overrides else recipe
