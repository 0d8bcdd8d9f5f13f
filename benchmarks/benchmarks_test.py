"""The benchmark scripts still run against the code they measure (they are not timed here).

Two of them had drifted from the library's API unnoticed (train_throughput passed a removed
`Trainer` argument, memory read a renamed settings key); these tests run their library-facing
parts on tiny configurations.
"""

import dataclasses
import importlib
import pathlib

import pytest

SCRIPTS = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("*.py")
                 if not p.stem.endswith("_test"))  # fmt: skip


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.__doc__ or name in ("common",)


@pytest.mark.parametrize("task", ["TXC", "LXS"])
def test_train_throughput_steps_fits_trainer_on_a_tiny_model(task):
    from benchmarks.train_throughput import TFVariant
    from tfmedbench.tasks import get_recipe

    recipe = get_recipe(task, image_size=32, depths=(1, 1, 1, 1), width=8)
    variant = TFVariant(recipe, 32, 2, "float32", False, True)
    variant.run(2)  # asserts 2 steps and a finite loss


def test_memory_reads_the_settings_fit_records():
    from benchmarks.memory import settings_summary
    from tfmedbench.train.runtime import Settings

    fields = {f.name: f.type for f in dataclasses.fields(Settings)}
    recorded = {name: {"bool": False, "int": 1}.get(getattr(kind, "__name__", kind), "x")
                for name, kind in fields.items()}  # fmt: skip
    assert settings_summary(recorded).startswith("x, jit=False, input=")


def test_pipeline_stage_maps_trace_on_jpeg_bytes():
    import io

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from benchmarks.pipeline_throughput import stage_maps

    buf = io.BytesIO()
    Image.fromarray(np.full((300, 260), 90, np.uint8)).save(buf, "JPEG", quality=95)
    data, seed = tf.constant(buf.getvalue()), tf.constant([1, 2], tf.int64)
    for name, fn in stage_maps().items():
        out = tf.function(fn)(data, seed)
        assert out is not None, name
