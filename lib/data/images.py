"""Reading image files into [0, 1] tensors for a model, and ImageNet's normalisation
(``IMAGENET_MEAN``, ``IMAGENET_STD``, ``normalize_imagenet``): the public face of the loaders'
shared image helpers, for chapters and chapter modules."""
from __future__ import annotations

# The code lives in ._images, which the data loaders import; this module is what everything
# outside lib.data imports, so that the loaders' private module can move without breaking it.
from ._images import (IMAGENET_MEAN, IMAGENET_STD, array_to_tensor, find_image, image_size,
                      load_rgb, normalize_imagenet)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize_imagenet", "array_to_tensor", "find_image",
           "image_size", "load_rgb"]
