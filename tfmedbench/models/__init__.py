"""Keras models of the benchmark: torchvision-exact ResNet-50, its classifier and its U-Net."""

from tfmedbench.models.classifier import classifier_resnet50
from tfmedbench.models.resnet import resnet50
from tfmedbench.models.unet import encoder_tap_names, unet_resnet50

__all__ = ["classifier_resnet50", "encoder_tap_names", "resnet50", "unet_resnet50"]
