"""Every op of the input pipelines stays on the host, XLA-compiled augmentation pieces included.

On an accelerator host, tf.data runs its functions on the CPU device that holds the dataset;
an op could only leave it through an explicit device annotation inside a map function (a
`tf.device` block, or a function captured with one). These tests serialise the datasets `fit`
builds for the three pipeline families (uncached classification with the fused decode map,
LXS/PXS's TF-native segmentation augmentation with its `jit_compile=True` pieces, VFS's
SA-UNet expansion with the cached fixed set) and check that no node of the graph or of any
function in its library -- the XLA-compiled ones included -- names a device other than the CPU.

Not verifiable on this CPU-only TensorFlow (no GPU device can be simulated): where the XLA
pieces compile at run time on a GPU host, and whether tf.data copies anything to the device
before the distribution strategy's prefetch. `benchmarks/placement_check.py` (run by
`benchmarks/gpu.sh`) checks both on a GPU: no GPU memory is allocated while the pipelines run.
"""

import importlib

import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from tfmedbench.data import pipeline, prepare
from tfmedbench.tasks import get_recipe

TINY = dict(image_size=32, resize_size=36, batch_size=2, cache="none")
CASES = {  # task: (datasets_tfds module, fake_data.write_tree kwargs, recipe overrides)
    "TXC": ("nih_shenzhen", {"n_images": 20, "size": 48}, TINY),
    "LXS": ("montgomery", {"n_per_class": 10}, dict(TINY, cache="auto")),
    "VFS": ("drive", {"n_train": 6, "n_test": 2}, dict(TINY, image_size=64, cache="auto")),
}


def _nodes(dataset):
    """(where, node) of every node of the dataset's graph and of its function library.

    `_as_serialized_graph` is tf.data's own serialisation (what tf.data service and
    checkpointing use); there is no public API returning the pipeline's GraphDef.
    """
    graph = graph_pb2.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    for node in graph.node:
        yield "graph", node
    for function in graph.library.function:
        for node in function.node_def:
            yield function.signature.name, node


def _xla_functions(dataset):
    graph = graph_pb2.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    return [f.signature.name for f in graph.library.function
            if f.attr.get("_XlaMustCompile") and f.attr["_XlaMustCompile"].b]  # fmt: skip


@pytest.mark.parametrize("task", list(CASES))
def test_training_pipeline_names_no_accelerator_device(task, tmp_path):
    module, kwargs, overrides = CASES[task]
    importlib.import_module(f"datasets_tfds.{module}.fake_data").write_tree(tmp_path / "raw",
                                                                           **kwargs)  # fmt: skip
    recipe = get_recipe(task, **overrides)
    builder = prepare.build(recipe.builder, str(tmp_path / "raw"), str(tmp_path / "tfds"),
                            verbose=False)  # fmt: skip
    ds = pipeline.make_dataset(recipe, builder, "train", training=True, batch_size=2)
    placed = [(where, node.name, node.device) for where, node in _nodes(ds)
              if node.device and "CPU" not in node.device.upper()]  # fmt: skip
    assert not placed
    if task == "LXS":  # the XLA pieces are part of what was checked
        assert len(_xla_functions(ds)) >= 3
    if task != "VFS":  # VFS's first batch augments the whole fixed set (13 x 5 native images)
        next(iter(ds))  # and the pipeline runs


def test_an_accelerator_annotation_would_be_found():
    """The check above can fail: a map function with a tf.device block is reported."""

    def annotated(x):
        with tf.device("/device:GPU:0"):
            return x + 1

    ds = tf.data.Dataset.range(3).map(annotated)
    assert any("GPU" in node.device for _, node in _nodes(ds))
