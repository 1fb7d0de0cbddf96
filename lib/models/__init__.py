"""The papers' models and small CPU-trainable analogues (see ``zoo.build`` for all by name)."""

from .masked_vgg import MaskedLinear, MaskedVGG, load_authors_weights, masked_vgg16
from .small import MnistNet, PooledCNN, gap_net, gmp_net
from .unet import UNetClassifier
from .zoo import build, paper_layers, small_densenet, small_efficientnet, small_resnet

__all__ = [
    "MaskedLinear",
    "MaskedVGG",
    "load_authors_weights",
    "masked_vgg16",
    "MnistNet",
    "PooledCNN",
    "gap_net",
    "gmp_net",
    "UNetClassifier",
    "build",
    "paper_layers",
    "small_densenet",
    "small_efficientnet",
    "small_resnet",
]
