"""Test-session environment for every test folder (tests/, datasets_tfds/, weights_converter/)."""

import os

# albumentations calls the network at import unless told not to; TF's C++ logs are noise here.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
