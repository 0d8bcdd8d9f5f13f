"""Checkpoint registry and converter: the paper's 21 ResNet-50 initializations -> Keras.

Every release is read into one canonical form (torchvision state-dict names and layouts) by a
format reader with strict accounting, then assigned to `tfmedbench.models.resnet50` and saved as
a `.weights.h5` with a JSON sidecar. Importing this package does not import torch; readers of
PyTorch files and the parity check import it when they run.
"""

from weights_converter.errors import ConversionError

__all__ = ["ConversionError"]
