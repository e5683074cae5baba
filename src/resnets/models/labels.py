"""Class names of the label sets that published weights were trained on."""

from __future__ import annotations

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

CIFAR100 = (  # the fine labels, in the order of the dataset's meta file
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)


def _imagenet() -> tuple[str, ...]:
    try:  # the one list torchvision keeps of the 1000 ImageNet-1K class names
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        raise ValueError(
            "the ImageNet-1K class names come from torchvision, which is not installed (or no longer "
            "has torchvision.models._meta); `pip install torchvision` to see names instead of indices"
        ) from None
    return tuple(_IMAGENET_CATEGORIES)


_SETS = {"cifar10": lambda: CIFAR10, "cifar100": lambda: CIFAR100, "imagenet-1k": _imagenet}


def class_names(labels: str) -> list[str]:
    """The class names of a label set ("cifar10", "cifar100", "imagenet-1k")."""
    if labels not in _SETS:
        raise ValueError(f"unknown label set {labels!r}; known: {', '.join(_SETS)}")
    return list(_SETS[labels]())


def class_names_or_indices(labels: str, num_classes: int) -> tuple[list[str], str | None]:
    """The class names, or ``["0", "1", …]`` and the reason when they cannot be had."""
    try:
        names = class_names(labels)
    except ValueError as exc:
        return [str(i) for i in range(num_classes)], str(exc)
    return names, None
