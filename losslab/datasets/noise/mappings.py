"""Class mappings of asymmetric (class-dependent) label noise, as plain data.

Each named mapping is a dict ``{source class: noisy class}``; classes that are
not keys are never flipped. The tables follow the class order of each data
set's official release (the order a loader must keep for them to make sense).
"""

from __future__ import annotations

# CIFAR-10 classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog,
# 7 horse, 8 ship, 9 truck. Visually similar classes are swapped (Patrini et al., 2017).
CIFAR10: dict[int, int] = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}

# MNIST digits that are easily mistaken for each other (Patrini et al., 2017).
MNIST: dict[int, int] = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}

# CIFAR-100 fine labels, in the official (alphabetical) order of the release's meta file.
CIFAR100_FINE_NAMES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver",
    "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly",
    "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach",
    "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew",
    "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
    "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe",
    "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# CIFAR-100 superclasses ("coarse labels"), in the official (alphabetical) order.
CIFAR100_COARSE_NAMES: tuple[str, ...] = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)  # fmt: skip

# Superclass of every CIFAR-100 fine label: entry i is the coarse label of fine label i,
# as paired in the release's training file (fine_labels / coarse_labels). Fine labels
# are alphabetical, so a superclass is NOT a block of 5 consecutive fine indices
# (e.g. aquatic_mammals = beaver 4, dolphin 30, otter 55, seal 72, whale 95).
CIFAR100_COARSE_OF_FINE: tuple[int, ...] = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3,        # apple .. bottle
    3, 14, 9, 18, 7, 11, 3, 9, 7, 11,      # bowl .. cattle
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15,     # chair .. dinosaur
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5,    # dolphin .. keyboard
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10,   # lamp .. mountain
    16, 4, 17, 4, 2, 0, 17, 4, 18, 17,     # mouse .. pine_tree
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19,    # plain .. rocket
    2, 10, 0, 1, 16, 12, 9, 13, 15, 13,    # rose .. spider
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19,      # squirrel .. tractor
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,     # train .. worm
)  # fmt: skip


def cifar100_next_in_superclass() -> dict[int, int]:
    """Each CIFAR-100 fine class to the next fine class of its own superclass, cyclically.

    Within a superclass the five fine classes are taken in increasing label order,
    and the last one wraps to the first, so the mapping is a permutation of the 100
    classes without fixed points that never leaves a superclass.

    References:
        Patrini et al., "Making Deep Neural Networks Robust to Label Noise: a Loss
        Correction Approach", CVPR 2017 (the CIFAR-100 noise within superclasses).
    """
    members: dict[int, list[int]] = {}
    for fine, coarse in enumerate(CIFAR100_COARSE_OF_FINE):
        members.setdefault(coarse, []).append(fine)
    mapping: dict[int, int] = {}
    for group in members.values():
        for i, fine in enumerate(group):
            mapping[fine] = group[(i + 1) % len(group)]
    return mapping


def cyclic(num_classes: int) -> dict[int, int]:
    """``y -> (y + 1) mod K`` for every class (the LDR paper's class-dependent noise)."""
    return {c: (c + 1) % num_classes for c in range(num_classes)}
