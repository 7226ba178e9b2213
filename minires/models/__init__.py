"""The ResNet zoo (``minires.models``): ``get(name, **kw)``, ``names()``, and one function per model.

ImageNet: resnet18/34/50/101/152 (torchvision layout, option-B shortcuts). CIFAR (6n + 2 layers):
resnet20/32/44/56/110/1202 (option A), plain20/32/44/56/110 (no shortcuts), preact_resnet20/56/110
(pre-activation, option A), and ``cifar_resnet(depth, shortcut, preact, num_classes, in_channels)``.
"""
import functools

from ..errors import ArgumentError
from .resnet import CifarResNet, ResNet

IMAGENET = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
            101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}
CIFAR_RESNETS = (20, 32, 44, 56, 110, 1202)
CIFAR_PLAIN = (20, 32, 44, 56, 110)
CIFAR_PREACT = (20, 56, 110)


def imagenet_resnet(depth, num_classes=1000, shortcut="B", **kwargs):
    if depth not in IMAGENET:
        raise ArgumentError(f"imagenet_resnet: depth must be one of {sorted(IMAGENET)}, got {depth!r}")
    block, layers = IMAGENET[depth]
    return ResNet(block, layers, num_classes=num_classes, shortcut=shortcut, **kwargs)


def cifar_resnet(depth, shortcut="A", preact=False, num_classes=10, in_channels=3, **kwargs):
    return CifarResNet(depth, shortcut=shortcut, preact=preact, num_classes=num_classes,
                       in_channels=in_channels, **kwargs)


def _builders():
    table = {}
    for depth in IMAGENET:
        table[f"resnet{depth}"] = functools.partial(imagenet_resnet, depth)
    for depth in CIFAR_RESNETS:
        table[f"resnet{depth}"] = functools.partial(cifar_resnet, depth, shortcut="A")
    for depth in CIFAR_PLAIN:
        table[f"plain{depth}"] = functools.partial(cifar_resnet, depth, shortcut=None)
    for depth in CIFAR_PREACT:
        table[f"preact_resnet{depth}"] = functools.partial(cifar_resnet, depth, shortcut="A", preact=True)
    return table


_BUILDERS = _builders()


def names():
    return sorted(_BUILDERS, key=lambda n: (n.rstrip("0123456789"), int(n.lstrip("abcdefghijklmnopqrstuvwxyz_"))))


def get(name, **kwargs):
    """Build a model by name; keyword arguments (num_classes, in_channels, shortcut, seed, ...) pass on."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ArgumentError(f"unknown model {name!r}; known models: {', '.join(names())}") from None
    return builder(**kwargs)


def _export(name):
    def build(**kwargs):
        return get(name, **kwargs)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"The {name} model (see minires.models)."
    return build


globals().update({name: _export(name) for name in _BUILDERS})
__all__ = ["get", "names", "cifar_resnet", "imagenet_resnet", "ResNet", "CifarResNet"] + list(_BUILDERS)
