"""Build a task's model from its recipe, and rebuild a finished run's model."""

from __future__ import annotations

import json
import os

import keras

from tfmedbench.models import classifier_resnet50, resnet50, unet_resnet50
from tfmedbench.models.resnet import stage_output_name
from tfmedbench.tasks import Recipe


def build_model(recipe, weights_path=None):
    """Classifier (sigmoid outputs) or U-Net; `weights_path` is a backbone `.weights.h5`."""
    shape = (recipe.image_size, recipe.image_size, 3)
    if recipe.kind == "classification":
        return classifier_resnet50(
            recipe.num_outputs,
            input_shape=shape,
            backbone_weights=weights_path,
            depths=recipe.depths,
            width=recipe.width,
        )
    return unet_resnet50(
        input_shape=shape,
        classes=recipe.num_outputs,
        backbone_weights=weights_path,
        depths=recipe.depths,
        width=recipe.width,
    )


def backbone_of(model, recipe):
    """The ResNet-50 part of a task model, as a model whose weights file loads into
    `resnet50(include_top=False, depths, width)` (same layers, same order)."""
    last = model.get_layer(stage_output_name(4, recipe.depths)).output
    return keras.Model(model.input, last, name="backbone")


def fresh_backbone(recipe):
    return resnet50(include_top=False, depths=recipe.depths, width=recipe.width)


def load_run_model(run_dir):
    """Rebuild the model of a finished run and load its best weights."""
    with open(os.path.join(run_dir, "config.json")) as f:
        recipe = Recipe.from_dict(json.load(f)["recipe"])
    model = build_model(recipe)
    model.load_weights(os.path.join(run_dir, "best.weights.h5"))
    return model, recipe
