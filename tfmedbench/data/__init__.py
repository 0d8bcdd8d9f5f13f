"""Input pipelines: TFDS datasets -> batched, augmented, normalised tf.data."""
