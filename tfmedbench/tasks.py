"""The 7 target tasks of the benchmark as declarative, overridable recipes.

Defaults follow the paper (Hosseinzadeh Taher et al., DART 2021, Appendices B and E) and, where
the paper is silent, the original code (github.com/MR-HosseinzadehTaher/BenchmarkTransferLearning,
`Version1/`). Every deliberate difference is a field whose other value restores the original, and
a row of the README's deviations table. Every field can be overridden (`Recipe.override`,
`tfmedbench fit --set key=value`); the resolved recipe is validated once, up front, and saved
with each run.
"""

from __future__ import annotations

import dataclasses
import json
import math

from tfmedbench.errors import UserError


class RecipeError(UserError, KeyError, ValueError):
    """Unknown task or recipe field, or a value of the wrong type or range."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])




def builder_labels(module):
    """The output names of a multi-label dataset: the tuple its builder owns
    (`datasets_tfds.<module>.LABELS`). Imported on first use: importing datasets_tfds
    registers its TFDS builders, which loads TensorFlow."""
    import importlib

    return tuple(importlib.import_module(f"datasets_tfds.{module}").LABELS)


CHEXPERT_SCORED = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

# Task code -> (TFDS builder name, datasets_tfds module). The builders know nothing of tasks.
TASK_BUILDERS = {  # in the paper's order (its Table 1)
    "ECC": ("tfmedbench_rsna_pe", "rsna_pe"),
    "DXC14": ("tfmedbench_chestxray14", "chestxray14"),
    "DXC5": ("tfmedbench_chexpert", "chexpert"),
    "TXC": ("tfmedbench_nih_shenzhen", "nih_shenzhen"),
    "LXS": ("tfmedbench_montgomery", "montgomery"),
    "VFS": ("tfmedbench_drive", "drive"),
    "PXS": ("tfmedbench_siim_pneumothorax", "siim_pneumothorax"),
}

# Allowed values of the enumerated fields (validated once, up front).
CHOICES = {
    "kind": ("classification", "segmentation"),
    "metric": ("auc", "dice"),
    "loss": ("bce", "dice"),
    "optimizer": ("adam",),
    "schedule": ("plateau", "cosine", "linear", "constant"),
    "augmentation": ("xray_cls", "xray_seg", "drive_saunet", "none"),
    "augment_draw": ("per-epoch", "per-run", "fixed"),
    "seg_augment": ("tf", "albumentations"),
    "test_time": ("tencrop", "resize"),
    "resize": ("torchvision", "cv2-linear", "cv2-nearest"),
    "normalization": ("imagenet", "none"),
    "dice_score": ("global", "per-image"),
    "score_region": ("image", "fov"),
    "lsr_draw": ("per-read", "per-run"),
    "cache": ("auto", "memory", "none"),
}
UNCERTAINTY_POLICIES = ("u-ones", "u-zeros", "lsr-ones", "lsr-zeros")
SEG_AUGMENT_BACKENDS = CHOICES["seg_augment"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    code: str
    title: str
    builder: str  # TFDS builder name in datasets_tfds
    kind: str  # "classification" | "segmentation"
    labels: tuple  # output names (one per sigmoid output / mask channel)
    metric: str  # "auc" | "dice"
    image_size: int
    loss: str  # "bce" | "dice" (soft Dice over the whole global batch, smooth 1, as the original)
    optimizer: str = "adam"
    lr: float = 2e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "plateau"  # "plateau" | "cosine" | "linear" | "constant"
    plateau_factor: float = 0.5
    plateau_patience: int = 5  # the original: ReduceLROnPlateau(patience=args.patience // 2)
    batch_size: int = 32  # per replica
    epochs: int = 1000  # max epochs
    # Early stopping as the original: stop once the validation loss has not improved for MORE
    # than `patience` epochs (`patience_counter > patience`: 11 epochs for patience 10).
    patience: int = 10
    drop_last: bool = False  # the original's DataLoader keeps the last partial batch
    augmentation: str = "none"  # "xray_cls" | "xray_seg" | "drive_saunet" | "none"
    augment_validation: bool = False  # LXS/PXS: the original augments its validation set too
    # Each training image appears `expansion` times per epoch (VFS: SA-UNet's 13x offline set).
    expansion: int = 1
    # When random augmentation parameters are drawn: every epoch (online), once per run, or once
    # for all runs ("fixed": one expanded set, as the original's downloaded SA-UNet folder).
    augment_draw: str = "per-epoch"
    # xray_seg's implementation: "tf" (TF ops, parallel in tf.data; same transforms and parameter
    # distributions, outputs equal albumentations' for equal parameters) | "albumentations" (the
    # library itself via tf.numpy_function, serialised by the GIL).
    seg_augment: str = "tf"
    # Resizing to `image_size`: "torchvision" (PIL-like antialiased bilinear, the classification
    # transforms), "cv2-linear" / "cv2-nearest" (cv2.resize geometry, the segmentation loaders).
    resize: str = "torchvision"
    test_time: str = "resize"  # "tencrop" (resize 256 -> TenCrop 224, mean) | "resize"
    resize_size: int = 256  # TenCrop's resize (the original: 256 for a 224 crop)
    normalization: str = "imagenet"  # "imagenet" mean/std | "none" (RGB in [0, 1])
    dice_score: str = "global"  # reported Dice: over all test pixels (the original's "Dice %")
    score_region: str = "image"  # "fov": DRIVE Dice inside the field-of-view mask only
    scored_labels: tuple = ()  # subset of `labels` that enters the score (DXC5); () = all
    uncertainty_policy: str = ""  # DXC5 only
    lsr_draw: str = "per-read"  # DXC5 LSR labels: redrawn at every read (the original) | per run
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
        """Return a validated copy with `changes` applied; unknown keys fail listing valid ones."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise RecipeError(f"unknown recipe field(s) {unknown}; valid fields: {sorted(fields)}")
        coerced = {
            key: coerce(value, getattr(self, key), key)
            for key, value in changes.items()
            if value is not None
        }
        recipe = dataclasses.replace(self, **coerced)
        recipe.validate()
        return recipe

    def validate(self):
        """Every field checked once, up front; the error names the field and its allowed range."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                self._fail(name, f"must be one of {', '.join(allowed)}")
        for name, low in _MINIMUMS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                self._fail(name, f"must be an integer >= {low}")
        for name, (low, high, bounds) in _REAL_RANGES.items():
            value = getattr(self, name)
            above = value > low if bounds[0] == "(" else value >= low
            below = value < high if bounds[1] == ")" else value <= high
            if not (isinstance(value, (int, float)) and math.isfinite(value) and above and below):
                self._fail(name, f"must be a finite number in {bounds[0]}{low}, {high}{bounds[1]}")
        self._validate_shapes()
        self._validate_task_fields()

    def _validate_shapes(self):
        if self.kind == "segmentation" and self.image_size % 32:
            self._fail("image_size", "must be a multiple of 32 for the U-Net")
        if self.test_time == "tencrop" and self.resize_size < self.image_size:
            self._fail("resize_size", f"must be >= image_size ({self.image_size}) for TenCrop")
        if len(self.depths) != 4 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            self._fail("depths", "must be four integers >= 1 (blocks per ResNet stage)")

    def _validate_task_fields(self):
        if self.uncertainty_policy and self.uncertainty_policy not in UNCERTAINTY_POLICIES:
            self._fail("uncertainty_policy", f"must be one of {', '.join(UNCERTAINTY_POLICIES)}")
        if self.builder == "tfmedbench_chexpert" and not self.uncertainty_policy:
            self._fail("uncertainty_policy", "is required for CheXpert")
        missing = set(self.scored_labels) - set(self.labels)
        if missing:
            self._fail("scored_labels", f"{sorted(missing)} are not among the labels")
        if self.kind == "classification" and (self.loss != "bce" or self.metric != "auc"):
            self._fail("loss", "classification trains with bce and scores auc")
        if self.score_region == "fov" and self.builder != "tfmedbench_drive":
            self._fail("score_region", "fov needs a dataset with a field-of-view mask (DRIVE)")

    def _fail(self, field, problem):
        raise RecipeError(f"{self.code}: recipe field {field!r} = {getattr(self, field)!r} {problem}")

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
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Integer fields and their minimum.
_MINIMUMS = {
    "image_size": 32, "batch_size": 1, "epochs": 1, "patience": 0, "plateau_patience": 0,
    "expansion": 1, "resize_size": 1, "width": 1, "shuffle_buffer": 1,
}  # fmt: skip
# Real fields: (low, high, interval brackets).
_REAL_RANGES = {
    "lr": (0.0, 10.0, "(]"), "beta_1": (0.0, 1.0, "[)"), "beta_2": (0.0, 1.0, "[)"),
    "adam_epsilon": (0.0, 1.0, "(]"), "weight_decay": (0.0, 1.0, "[]"),
    "plateau_factor": (0.0, 1.0, "()"),
}  # fmt: skip


def coerce(value, current, key):
    """Convert a CLI string (or any value) to the type of the field it overrides."""
    if not isinstance(value, str):
        if isinstance(current, tuple):
            return tuple(value) if isinstance(value, (list, tuple)) else (value,)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
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
    batch_size=32,
    epochs=1000,
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

_XRAY_SEG = dict(
    image_size=224,
    loss="dice",
    batch_size=32,
    augmentation="xray_seg",
    augment_validation=True,
    resize="cv2-nearest",
    normalization="none",  # main_segmentation.py: --normalization defaults to None
    **_SEG,
)

def _make_recipes():
    recipes = (
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
            epochs=1,  # Appendix E: ECC is fine-tuned for one epoch
            patience=1,
            augmentation="none",
            test_time="resize",
        ),
        Recipe(
            code="DXC14",
            title="NIH ChestX-ray14, 14 thorax diseases",
            builder="tfmedbench_chestxray14",
            labels=builder_labels("chestxray14"),
            **_XRAY_CLS,
        ),
        Recipe(
            code="DXC5",
            title="CheXpert, scored on 5 findings",
            builder="tfmedbench_chexpert",
            labels=builder_labels("chexpert"),
            scored_labels=CHEXPERT_SCORED,
            uncertainty_policy="lsr-ones",
            **dict(_XRAY_CLS, epochs=10),  # Appendix E: DXC5 is fine-tuned for ten epochs
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
            **_XRAY_SEG,
        ),
        Recipe(
            code="VFS",
            title="DRIVE, retinal vessel segmentation",
            builder="tfmedbench_drive",
            image_size=512,
            loss="bce",
            batch_size=16,  # the author (original repository, issue #3): batch 16 for DRIVE
            augmentation="drive_saunet",
            expansion=13,  # SA-UNet's expanded set: original + 3 rotations, 3 colour, 3 noise, 3 flips
            augment_draw="fixed",
            resize="cv2-linear",
            # Table 6: all ten random-init runs stopped at exactly 100.0 +- 0.0 epochs (ImageNet
            # 71 +- 18): a 100-epoch cap (also the cosine schedule's period), not the script's 200.
            **dict(_SEG, epochs=100),
        ),
        Recipe(
            code="PXS",
            title="SIIM-ACR pneumothorax segmentation",
            builder="tfmedbench_siim_pneumothorax",
            **_XRAY_SEG,
        ),
    )
    return {r.code: r for r in recipes}


_RECIPES = []


def recipes():
    """{task code: Recipe}, built on first use (the multi-label recipes read their labels from
    the builders)."""
    if not _RECIPES:
        _RECIPES.append(_make_recipes())
    return _RECIPES[0]


def __getattr__(name):  # `tasks.RECIPES`, without building the recipes at import
    if name == "RECIPES":
        return recipes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_recipe(code, **overrides):
    """The validated recipe of task `code` (case-insensitive), with `overrides` applied."""
    key = str(code).upper()
    if key not in TASK_BUILDERS:
        raise RecipeError(f"unknown task {code!r}; choose one of {', '.join(TASK_BUILDERS)}")
    recipe = recipes()[key]
    recipe.validate()
    return recipe.override(**overrides) if overrides else recipe
