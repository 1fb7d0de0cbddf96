"""Data for the three profiles: Fashion-MNIST, scenes and STACK-MIX (default), the papers' own
data sets (full), and ``summary()`` of what is on this machine.

The submodules load lazily: ``lib.data.load_fashion_mnist`` imports only what it needs.
"""

from importlib import import_module

from .errors import DataFormatError, DataMissingError, LoadReport

_LAZY = {
    "load_fashion_mnist": "fashion_mnist",
    "CLASSES": "fashion_mnist",
    "make_scenes": "scenes",
    "Scenes": "scenes",
    "stack_mix": "stackmix",
    "StackMix": "stackmix",
    "ImageNetVal": "imagenet",
    "VinDrCXR": "vindr",
    "NIHChestXray": "nih",
    "load_stack_folder": "stack_folders",
    "rescale_boxes": "boxes",
    "box_mask": "boxes",
}

__all__ = ["DataMissingError", "DataFormatError", "LoadReport", "summary", *_LAZY]


def summary(data_root=None):
    """One row per data set: name, profile, present/missing, size, where to get it."""
    # lazy: lib.data loads its submodules on first use (see _LAZY)
    from .summary import summary as _summary

    return _summary(data_root)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lib.data' has no attribute {name!r}")
