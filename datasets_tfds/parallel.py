"""One example generator, two ways to run it: in the building process, or with Apache Beam.

Every builder of this package writes its `_generate_examples` as a list of work items (an image
path, a label row, a study) and a module-level function `make(item) -> [(key, example)]`.
`examples(builder, items, make)` returns

* a plain generator over the items, in order, when the build has no Beam options (the default:
  no apache-beam needed), or
* a Beam PTransform `Create(items) | Reshuffle | FlatMap(make)` when the DownloadConfig carries
  `beam_options` or `beam_runner` (`tfds build --beam_pipeline_options=...`, or
  `python -m datasets_tfds build NAME --workers N`, which runs Beam's DirectRunner with N
  worker processes). The same code runs on Dataflow, Spark or Flink for a cluster.

Both ways produce the same examples under the same keys (TFDS orders a split by a hash of the
key either way; tested in `beam_build_test.py`), so a dataset built in parallel equals the
one-process build. `make` and the items must pickle: module-level functions and
`functools.partial` over strings, numbers and tuples.
"""

from __future__ import annotations


def requested(builder):
    """Whether this build runs on Beam (LocalBuild records it from the DownloadConfig)."""
    return bool(getattr(builder, "_beam_build", False))


def examples(builder, items, make):
    """Generator of `make(item)`'s (key, example) pairs, or the equivalent Beam PTransform."""
    items = list(items)
    if not requested(builder):
        return _in_process(items, make)
    # Imported here: only parallel builds need apache-beam (TFDS's lazy import says how to
    # install it when missing).
    from tensorflow_datasets.core.utils.lazy_imports_utils import apache_beam as beam

    return (
        "Items" >> beam.Create(items)
        # Create puts all items in one bundle; the reshuffle spreads them over the workers.
        | "Spread" >> beam.Reshuffle()
        | "Examples" >> beam.FlatMap(make)
    )


def _in_process(items, make):
    for item in items:
        yield from make(item)


def direct_runner_options(workers):
    """PipelineOptions of Beam's local DirectRunner with `workers` processes."""
    try:
        import apache_beam as beam
    except ImportError as err:
        from datasets_tfds.errors import DatasetError

        raise DatasetError(
            f"a parallel build needs apache-beam ({err}); pip install "
            "\"tfmedbench-datasets[beam]\" (or \"tfmedbench[beam]\"), or build with one worker"
        ) from None
    return beam.options.pipeline_options.PipelineOptions(flags=[
        "--runner=DirectRunner", f"--direct_num_workers={int(workers)}",
        "--direct_running_mode=multi_processing",
    ])  # fmt: skip
