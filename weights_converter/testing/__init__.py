"""Test helpers: a plain-PyTorch torchvision ResNet and writers of each release's on-disk layout.

Kept in the package (not under tests/) so other test suites can build reference checkpoints too.
Importing this package imports torch.
"""
