"""tfmedbench: which pre-trained initialization should I fine-tune for my medical imaging task?

A TensorFlow / Keras 3 reimplementation and extension of "A Systematic Benchmarking Analysis of
Transfer Learning for Medical Image Analysis" (Hosseinzadeh Taher et al., 2021).
"""

__version__ = "0.1.0"
