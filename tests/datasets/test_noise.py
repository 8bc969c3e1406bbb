"""Label-noise models: rates, mappings, reproducibility, file formats and error messages."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from losslab.datasets.base import DataBundle, Split, SubsetSource
from losslab.datasets.noise import (
    AsymmetricNoise,
    HumanNoise,
    InstanceNoise,
    LabelNoise,
    NoNoise,
    SymmetricNoise,
    TransitionNoise,
    empirical_transition_matrix,
)
from losslab.datasets.noise import mappings as noise_mappings

CONF_NOISE = Path(__file__).resolve().parents[2] / "losslab" / "conf" / "noise"


def make_bundle(
    y_train: np.ndarray,
    num_classes: int,
    *,
    x_train: torch.Tensor | None = None,
    y_val: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    source_train: np.ndarray | None = None,
    source_val: np.ndarray | None = None,
    name: str = "fake",
) -> DataBundle:
    """A bundle from label vectors (inputs are zeros unless given)."""

    def split(y, x=None, source=None) -> Split:
        y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        x = torch.zeros(len(y), 2) if x is None else x
        return Split.clean(x, y, source_index=None if source is None else torch.as_tensor(source))

    y_val = np.arange(200) % num_classes if y_val is None else y_val
    y_test = np.arange(300) % num_classes if y_test is None else y_test
    return DataBundle(
        name=name,
        train=split(y_train, x_train, source_train),
        val=split(y_val, None, source_val),
        test=split(y_test),
        num_classes=num_classes,
        input_shape=tuple(x_train.shape[1:]) if x_train is not None else (2,),
    )


def balanced(n: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def within(observed: float, p: float, n: int, sds: float = 4.0) -> bool:
    """``observed`` is a binomial share within ``sds`` standard deviations of ``p``."""
    return abs(observed - p) <= sds * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def features_bundle(n: int = 20_000, k: int = 10, d: int = 16, seed: int = 0) -> DataBundle:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = torch.as_tensor(rng.standard_normal((n, d)), dtype=torch.float32)
    return make_bundle(y, k, x_train=x)


def write_matrix(tmp_path: Path, matrix: np.ndarray, suffix: str = ".npy") -> Path:
    path = tmp_path / f"T{suffix}"
    if suffix == ".npy":
        np.save(path, matrix)
    elif suffix == ".csv":
        np.savetxt(path, matrix, delimiter=",")
    else:
        np.savetxt(path, matrix)
    return path


T4 = np.array(
    [
        [0.7, 0.1, 0.1, 0.1],
        [0.0, 0.6, 0.4, 0.0],
        [0.2, 0.0, 0.8, 0.0],
        [0.25, 0.25, 0.25, 0.25],
    ]
)


def models(tmp_path: Path) -> dict[str, LabelNoise]:
    """One instance of every randomised model, for contract tests (K = 4)."""
    return {
        "symmetric": SymmetricNoise(rate=0.4),
        "symmetric_exact": SymmetricNoise(rate=0.4, exact=True, include_true=True),
        "asymmetric": AsymmetricNoise(rate=0.4, mapping="cyclic"),
        "instance": InstanceNoise(rate=0.4),
        "transition": TransitionNoise(file=str(write_matrix(tmp_path, T4))),
    }


MODEL_NAMES = ["symmetric", "symmetric_exact", "asymmetric", "instance", "transition"]


# --- symmetric ---


@pytest.mark.parametrize("include_true", [False, True])
def test_symmetric_realised_rate(include_true):
    k, n, rate = 10, 20_000, 0.3
    data = make_bundle(balanced(n, k), k)
    noisy = SymmetricNoise(rate=rate, include_true=include_true, seed=3).apply(data)
    expected = rate * (k - 1) / k if include_true else rate
    realised = noisy.train.is_noisy.float().mean().item()
    assert within(realised, expected, n)
    summary = SymmetricNoise(rate=rate, include_true=include_true, seed=3).summary(noisy)
    assert summary["realised_rate"] == pytest.approx(realised)
    assert summary["rate"] == rate and summary["type"] == "symmetric" and summary["seed"] == 3


def test_symmetric_new_labels_uniform_over_other_classes():
    k, n, rate = 5, 20_000, 0.5
    data = make_bundle(balanced(n, k), k)
    noisy = SymmetricNoise(rate=rate).apply(data)
    matrix = np.array(SymmetricNoise().transition_matrix(noisy))
    n_c = n // k
    for i in range(k):
        for j in range(k):
            p = 1 - rate if i == j else rate / (k - 1)
            assert within(matrix[i, j], p, n_c), (i, j, matrix[i, j], p)


@pytest.mark.parametrize("rate", [0.0, 0.13, 0.5, 1.0])
def test_symmetric_exact_flips_exact_count_per_class(rate):
    k = 7
    y = np.concatenate([np.full(c * 37 + 11, c) for c in range(k)])  # unequal classes
    data = make_bundle(np.random.default_rng(0).permutation(y), k)
    noisy = SymmetricNoise(rate=rate, exact=True, seed=5).apply(data)
    for c in range(k):
        in_c = noisy.train.y_clean == c
        assert int(noisy.train.is_noisy[in_c].sum()) == round(rate * int(in_c.sum()))
    # include_true: the chosen samples draw from all K classes, so at most that many change
    loose = SymmetricNoise(rate=rate, exact=True, include_true=True, seed=5).apply(data)
    for c in range(k):
        in_c = loose.train.y_clean == c
        assert int(loose.train.is_noisy[in_c].sum()) <= round(rate * int(in_c.sum()))


# --- asymmetric ---


@pytest.mark.parametrize(
    ("mapping", "k", "pairs"),
    [
        ("cifar10", 10, None),
        ("mnist", 10, None),
        ("cyclic", 6, None),
        ("cifar100", 100, None),
        ("pairs", 8, [[0, 3], [3, 0], [5, 7]]),
    ],
)
def test_asymmetric_follows_mapping_and_rate(mapping, k, pairs):
    n, rate = 20_000, 0.35
    data = make_bundle(balanced(n, k), k)
    model = AsymmetricNoise(rate=rate, mapping=mapping, pairs=pairs, seed=1)
    noisy = model.apply(data)
    table = model.class_map(k)
    clean, y = noisy.train.y_clean.numpy(), noisy.train.y.numpy()
    flipped = clean != y
    assert all(y[i] == table[clean[i]] for i in np.flatnonzero(flipped))
    unmapped = ~np.isin(clean, list(table))
    assert not flipped[unmapped].any()
    mapped_share = float((~unmapped).mean())
    assert within(float(flipped.mean()), rate * mapped_share, n)
    assert within(float(flipped[~unmapped].mean()), rate, int((~unmapped).sum()))


def test_named_mappings():
    assert noise_mappings.CIFAR10 == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    assert noise_mappings.MNIST == {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
    assert AsymmetricNoise(mapping="cyclic").class_map(4) == {0: 1, 1: 2, 2: 3, 3: 0}


# Superclass membership written out by name (an encoding independent of the table in
# noise_mappings), from the CIFAR-100 release's list of superclasses.
CIFAR100_SUPERCLASSES = {
    "aquatic_mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food_containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit_and_vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household_electrical_devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household_furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large_carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large_man-made_outdoor_things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large_natural_outdoor_scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large_omnivores_and_herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium_mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect_invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small_mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles_1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles_2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}


def test_cifar100_table_matches_superclass_lists():
    fine = noise_mappings.CIFAR100_FINE_NAMES
    coarse = noise_mappings.CIFAR100_COARSE_NAMES
    assert len(fine) == 100 and list(fine) == sorted(fine)  # fine labels are alphabetical
    assert list(coarse) == sorted(CIFAR100_SUPERCLASSES)
    for superclass, members in CIFAR100_SUPERCLASSES.items():
        for name in members:
            assert coarse[noise_mappings.CIFAR100_COARSE_OF_FINE[fine.index(name)]] == superclass


def test_cifar100_mapping_stays_in_superclass_and_is_a_derangement():
    table = noise_mappings.cifar100_next_in_superclass()
    coarse = noise_mappings.CIFAR100_COARSE_OF_FINE
    assert sorted(table) == list(range(100)) and sorted(table.values()) == list(range(100))
    assert all(src != dst for src, dst in table.items())
    assert all(coarse[src] == coarse[dst] for src, dst in table.items())
    # next member in increasing order, cyclically: beaver 4 -> dolphin 30 ... whale 95 -> beaver 4
    assert [table[c] for c in (4, 30, 55, 72, 95)] == [30, 55, 72, 95, 4]
    # not the "blocks of 5 consecutive indices" assumption
    assert any(dst // 5 != src // 5 for src, dst in table.items())


# --- instance ---


def test_instance_realised_rate_near_rate():
    data = features_bundle()
    for rate in (0.2, 0.45):
        noisy = InstanceNoise(rate=rate, tau=0.1, seed=2).apply(data)
        realised = noisy.train.is_noisy.float().mean().item()
        assert within(realised, rate, len(data.train), sds=5)


def test_instance_flips_depend_on_features():
    k, d, n = 5, 16, 4000
    v = np.random.default_rng(7).standard_normal(d)
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    x = torch.as_tensor(3.0 * sign[:, None] * v[None, :], dtype=torch.float32)
    data = make_bundle(np.zeros(n, dtype=np.int64), k, x_train=x)  # one class, two inputs
    noisy = InstanceNoise(rate=0.5, tau=0.0, seed=0).apply(data)
    y = noisy.train.y.numpy()
    hist = [np.bincount(y[(sign == s) & (y != 0)], minlength=k) for s in (1.0, -1.0)]
    hist = [h / h.sum() for h in hist]
    assert 0.5 * np.abs(hist[0] - hist[1]).sum() > 0.5  # the flip target follows the input
    assert within(float((y != 0).mean()), 0.5, n)


def test_instance_projection_shared_by_train_and_val():
    k, d = 4, 8
    v = np.random.default_rng(1).standard_normal(d)
    x = torch.as_tensor(4.0 * np.tile(v, (2000, 1)), dtype=torch.float32)
    y = np.zeros(2000, dtype=np.int64)
    data = make_bundle(y, k, x_train=x)
    data = DataBundle(
        name="fake",
        train=data.train,
        val=Split.clean(x.clone(), torch.as_tensor(y)),
        test=data.test,
        num_classes=k,
        input_shape=(d,),
    )
    noisy = InstanceNoise(rate=0.5, tau=0.0).apply(data)
    targets = [set(s.y[s.is_noisy].tolist()) for s in (noisy.train, noisy.val)]
    assert len(targets[0]) == 1 and targets[0] == targets[1]  # same input -> same target


def test_instance_needs_in_memory_inputs():
    data = features_bundle(n=100)
    lazy = DataBundle(
        name="lazy",
        train=Split.clean(SubsetSource(data.train.x, range(len(data.train))), data.train.y),
        val=data.val,
        test=data.test,
        num_classes=data.num_classes,
        input_shape=data.input_shape,
    )
    with pytest.raises(ValueError, match="instance needs in-memory"):
        InstanceNoise(rate=0.2).apply(lazy)


# --- transition ---


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".txt"])
def test_transition_matrix_file_is_followed(tmp_path, suffix):
    k, n = 4, 20_000
    model = TransitionNoise(file=str(write_matrix(tmp_path, T4, suffix)), seed=4)
    np.testing.assert_allclose(model.matrix, T4)
    data = make_bundle(balanced(n, k), k)
    noisy = model.apply(data)
    matrix = np.array(model.transition_matrix(noisy))
    n_c = n // k
    for i in range(k):
        for j in range(k):
            assert within(matrix[i, j], T4[i, j], n_c), (i, j, matrix[i, j])
    assert matrix[1, 0] == 0.0 and matrix[2, 1] == 0.0  # zero entries are never drawn
    summary = model.summary(noisy)
    assert summary["rate"] == pytest.approx(np.mean(1 - np.diag(T4)))
    assert summary["params"] == {"file": model.file}


# --- empirical transition matrix ---


def test_empirical_transition_matrix():
    data = make_bundle(np.array([0, 0, 0, 0, 1, 1, 2]), 4)
    noisy = DataBundle(
        name=data.name,
        train=data.train.with_labels(torch.tensor([0, 1, 1, 3, 1, 0, 2])),
        val=data.val,
        test=data.test,
        num_classes=4,
        input_shape=data.input_shape,
    )
    expected = [
        [0.25, 0.5, 0.0, 0.25],
        [0.5, 0.5, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],  # no training sample of class 3
    ]
    assert NoNoise().transition_matrix(noisy) == expected
    assert empirical_transition_matrix(np.array([1]), np.array([0]), 2) == [[0, 0], [1, 0]]
    clean = NoNoise().transition_matrix(data)
    assert clean[:3] == [[float(i == j) for j in range(4)] for i in range(3)]


# --- contract shared by every model ---


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_reproducible_from_noise_seed(tmp_path, name):
    data = features_bundle(n=4000, k=4)
    model = models(tmp_path)[name]
    first = model.apply(data)
    again = model.apply(data)
    assert torch.equal(first.train.y, again.train.y) and torch.equal(first.val.y, again.val.y)
    model.seed = 1
    other = model.apply(data)
    assert not torch.equal(first.train.y, other.train.y)
    assert model.summary(other)["labels_sha"] != model.summary(first)["labels_sha"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_independent_of_global_rng(tmp_path, name):
    data = features_bundle(n=2000, k=4)
    model = models(tmp_path)[name]
    results = []
    for run_seed in (0, 123):
        torch.manual_seed(run_seed)
        np.random.seed(run_seed)
        torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
        results.append(model.apply(data))
        assert torch.equal(torch.get_rng_state(), torch_state)  # global RNG untouched
        after = np.random.get_state()
        assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
        assert after[2:] == numpy_state[2:]
    assert torch.equal(results[0].train.y, results[1].train.y)
    assert torch.equal(results[0].val.y, results[1].val.y)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_test_split_untouched_and_val_corrupted(tmp_path, name):
    data = features_bundle(n=2000, k=4)
    noisy = models(tmp_path)[name].apply(data)
    assert noisy.test is data.test
    assert torch.equal(noisy.test.y, data.test.y) and not noisy.test.is_noisy.any()
    assert torch.equal(noisy.train.y_clean, data.train.y_clean)
    assert torch.equal(noisy.train.is_noisy, noisy.train.y != noisy.train.y_clean)
    assert noisy.train.is_noisy.any() and noisy.val.is_noisy.any()
    assert noisy.train.y.dtype == torch.int64
    assert int(noisy.train.y.min()) >= 0 and int(noisy.train.y.max()) < 4


def test_summary_contract(tmp_path):
    data = features_bundle(n=1000, k=4)
    for model in [NoNoise(), *models(tmp_path).values()]:
        summary = model.summary(model.apply(data))
        assert {"type", "rate", "realised_rate", "seed", "labels_sha"} <= set(summary)
        assert summary["type"] == model.kind
        assert 0.0 <= summary["realised_rate"] <= 1.0


# --- human (CIFAR-N) ---


def write_cifar_n(
    path: Path, clean: np.ndarray, labels: dict[str, np.ndarray], how: str = "torch"
) -> Path:
    """A label file in the CIFAR-N release's format (a torch.save'd dict of arrays)."""
    obj = {"clean_label": clean, **labels}
    if how == "torch":
        torch.save(obj, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(obj, fh)
    return path


@pytest.fixture
def cifar_n(tmp_path):
    """A fake CIFAR-10N file over 500 'official' training images, and a bundle of a subset."""
    rng = np.random.default_rng(0)
    n_source, k = 500, 10
    clean = rng.integers(0, k, n_source)
    labels = {
        key: np.where(rng.random(n_source) < share, rng.integers(0, k, n_source), clean)
        for key, share in [
            ("aggre_label", 0.1),
            ("random_label1", 0.2),
            ("random_label2", 0.2),
            ("random_label3", 0.2),
            ("worse_label", 0.4),
        ]
    }
    order = rng.permutation(n_source)
    train_idx, val_idx = order[:300], order[300:400]  # 100 source images unused
    data = make_bundle(
        clean[train_idx],
        k,
        y_val=clean[val_idx],
        source_train=train_idx,
        source_val=val_idx,
        name="cifar10",
    )
    path = write_cifar_n(tmp_path / "CIFAR-10_human.pt", clean, labels)
    return path, data, labels, train_idx, val_idx


@pytest.mark.parametrize(
    ("label", "key"),
    [("aggre", "aggre_label"), ("rand2", "random_label2"), ("worst", "worse_label")],
)
def test_human_labels_aligned_by_source_index(cifar_n, label, key):
    path, data, labels, train_idx, val_idx = cifar_n
    model = HumanNoise(file=str(path), label=label)
    noisy = model.apply(data)
    np.testing.assert_array_equal(noisy.train.y.numpy(), labels[key][train_idx])
    np.testing.assert_array_equal(noisy.val.y.numpy(), labels[key][val_idx])
    assert torch.equal(noisy.test.y, data.test.y)
    summary = model.summary(noisy)
    assert summary["rate"] is None and summary["type"] == "human"
    expected = float((labels[key][train_idx] != data.train.y_clean.numpy()).mean())
    assert summary["realised_rate"] == pytest.approx(expected)
    assert summary["params"] == {"file": str(path), "label": label}


def test_human_cifar100_pickled_file(tmp_path):
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 100, 400)
    noisy_label = rng.integers(0, 100, 400)
    path = write_cifar_n(tmp_path / "c100.pkl", clean, {"noisy_label": noisy_label}, how="pickle")
    idx = np.arange(0, 400, 2)
    data = make_bundle(
        clean[idx], 100, y_val=clean[idx[:10]], source_train=idx, source_val=idx[:10]
    )
    noisy = HumanNoise(file=str(path), label="noisy100").apply(data)
    np.testing.assert_array_equal(noisy.train.y.numpy(), noisy_label[idx])


def test_human_errors(cifar_n, tmp_path):
    path, data, labels, train_idx, _ = cifar_n
    with pytest.raises(ValueError, match=r"noise\.file='.*nowhere\.pt'.*CIFAR-N.*never bundled"):
        HumanNoise(file=str(tmp_path / "nowhere.pt"))
    with pytest.raises(ValueError, match=r"noise\.label='best'.*aggre, rand1.*noisy100"):
        HumanNoise(file=str(path), label="best")
    with pytest.raises(ValueError, match=r"no key 'noisy_label'.*noise\.label=noisy100"):
        HumanNoise(file=str(path), label="noisy100")
    with pytest.raises(ValueError, match=r"noise=human needs noise\.file=.*CIFAR-N"):
        HumanNoise().apply(data)
    # a file shorter than the source split
    short = write_cifar_n(
        tmp_path / "short.pt", labels["aggre_label"][:350], {"aggre_label": labels["aggre_label"]}
    )
    with pytest.raises(ValueError, match=r"'aggre_label' holds 500 labels but 'clean_label' holds"):
        HumanNoise(file=str(short))
    short = write_cifar_n(
        tmp_path / "short2.pt",
        labels["aggre_label"][:350] * 0,
        {"aggre_label": labels["aggre_label"][:350]},
    )
    with pytest.raises(ValueError, match=r"holds 350 labels .* source index 4\d\d .*at least"):
        HumanNoise(file=str(short)).apply(data)
    # clean labels of another data set
    other = write_cifar_n(tmp_path / "other.pt", np.full(500, 3), labels)
    with pytest.raises(ValueError, match=r"clean_label disagrees .* belongs to another data set"):
        HumanNoise(file=str(other)).apply(data)
    # labels out of range for K
    big = make_bundle(data.train.y_clean.numpy() % 5, 5, source_train=train_idx)
    with pytest.raises(ValueError, match=r"labels up to 9 .* K=5"):
        HumanNoise(file=str(path)).apply(big)
    # not a dict
    bad = tmp_path / "list.pt"
    torch.save([1, 2, 3], bad)
    with pytest.raises(ValueError, match=r"expected a dict of label arrays"):
        HumanNoise(file=str(bad))


# --- parameter errors ---


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (
            lambda: SymmetricNoise(rate=1.5),
            r"noise\.rate=1\.5 is invalid: must be a number in \[0, 1\]",
        ),
        (lambda: SymmetricNoise(rate=-0.1), r"noise\.rate=-0\.1 .*\[0, 1\]"),
        (lambda: SymmetricNoise(rate="abc"), r"noise\.rate='abc' .*\[0, 1\]"),
        (lambda: SymmetricNoise(rate=float("nan")), r"noise\.rate=nan"),
        (lambda: SymmetricNoise(seed=-1), r"noise\.seed=-1 .*integer >= 0"),
        (lambda: SymmetricNoise(seed=0.5), r"noise\.seed=0\.5 .*integer >= 0"),
        (lambda: SymmetricNoise(include_true="yes"), r"noise\.include_true='yes' .*true or false"),
        (lambda: SymmetricNoise(exact=1), r"noise\.exact=1 .*true or false"),
        (
            lambda: AsymmetricNoise(mapping="cifar"),
            r"noise\.mapping='cifar' .*cifar10, cifar100, mnist, cyclic, pairs",
        ),
        (lambda: AsymmetricNoise(mapping="pairs"), r"noise\.pairs=None .*\[source, target\]"),
        (lambda: AsymmetricNoise(mapping="pairs", pairs=[]), r"noise\.pairs=\[\] "),
        (
            lambda: AsymmetricNoise(mapping="pairs", pairs=[[1, 2, 3]]),
            r"noise\.pairs=.*bad entry \[1, 2, 3\]",
        ),
        (
            lambda: AsymmetricNoise(mapping="pairs", pairs=[[1, -2]]),
            r"noise\.pairs=.*bad entry \[1, -2\]",
        ),
        (
            lambda: AsymmetricNoise(mapping="pairs", pairs=[[3, 3]]),
            r"pair \[3, 3\] maps a class to itself",
        ),
        (
            lambda: AsymmetricNoise(mapping="pairs", pairs=[[1, 2], [1, 3]]),
            r"class 1 is mapped twice \(to 2 and 3\)",
        ),
        (
            lambda: AsymmetricNoise(mapping="cifar10", pairs=[[1, 2]]),
            r"noise\.pairs=.*only used with noise\.mapping=pairs",
        ),
        (lambda: AsymmetricNoise(rate=2), r"noise\.rate=2 "),
        (lambda: InstanceNoise(tau=1.5), r"noise\.tau=1\.5 .*\[0, 1\]"),
        (lambda: InstanceNoise(rate=-1), r"noise\.rate=-1 "),
        (lambda: TransitionNoise(file="/no/such/T.npy"), r"noise\.file='/no/such/T\.npy'.*no such"),
        (lambda: HumanNoise(label=3), r"noise\.label=3 .*aggre"),
    ],
)
def test_bad_parameters(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


@pytest.mark.parametrize(
    ("mapping", "pairs", "k", "pattern"),
    [
        ("cifar10", None, 5, r"noise\.mapping='cifar10' .*class 9 .*K=5 .*0\.\.4"),
        ("mnist", None, 8, r"noise\.mapping='mnist' .*class 8 .*K=8"),
        ("cifar100", None, 10, r"noise\.mapping='cifar100' .*class 99 .*K=10"),
        ("pairs", [[0, 12]], 10, r"noise\.pairs=\[\[0, 12\]\] .*class 12 .*K=10"),
    ],
)
def test_mapping_must_fit_num_classes(mapping, pairs, k, pattern):
    data = make_bundle(balanced(100, k), k)
    with pytest.raises(ValueError, match=pattern):
        AsymmetricNoise(mapping=mapping, pairs=pairs).apply(data)


@pytest.mark.parametrize(
    ("content", "suffix", "pattern"),
    [
        (np.ones((2, 3)) / 3, ".npy", r"shape \(2, 3\); it must be square"),
        (np.array([[0.5, 0.5], [1.2, -0.2]]), ".npy", r"row 1 has a negative entry T\[1, 1\]"),
        (np.array([[0.5, 0.5], [0.3, 0.6]]), ".csv", r"row 1 sums to 0\.9; .*tolerance 1e-6\)"),
        (np.array([[0.5, 0.5], [np.nan, 1.0]]), ".txt", r"row 1 has a non-finite entry"),
        (np.eye(2), ".json", r"unknown format '\.json'.*\.npy, \.csv"),
    ],
)
def test_transition_file_errors(tmp_path, content, suffix, pattern):
    if suffix == ".json":
        path = tmp_path / "T.json"
        path.write_text("[[1, 0], [0, 1]]")
    else:
        path = write_matrix(tmp_path, content, suffix)
    with pytest.raises(ValueError, match=r"noise\.file='.*' is invalid: .*" + pattern):
        TransitionNoise(file=str(path))


def test_transition_row_tolerance_and_apply_errors(tmp_path):
    near = np.array([[0.5, 0.5 + 5e-7], [0.0, 1.0]])
    TransitionNoise(file=str(write_matrix(tmp_path, near)))  # within 1e-6: accepted
    (tmp_path / "bad.csv").write_text("0.5,abc\n0.5,0.5\n")
    with pytest.raises(ValueError, match=r"noise\.file=.*cannot read a numeric matrix"):
        TransitionNoise(file=str(tmp_path / "bad.csv"))
    data = make_bundle(balanced(100, 3), 3)
    model = TransitionNoise(file=str(write_matrix(tmp_path, T4)))
    with pytest.raises(ValueError, match=r"shape \(4, 4\) but the data set 'fake' has K=3 .*3 x 3"):
        model.apply(data)
    with pytest.raises(ValueError, match=r"noise=transition needs noise\.file="):
        TransitionNoise().apply(data)


def test_too_few_classes():
    data = make_bundle(np.zeros(10, dtype=np.int64), 1, y_val=np.zeros(3), y_test=np.zeros(3))
    with pytest.raises(ValueError, match=r"noise=symmetric needs at least 2 classes.*K=1"):
        SymmetricNoise().apply(data)


# --- the YAML files ---


def compose_noise(token: str, *overrides: str):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        return compose(config_name="train", overrides=[f"noise={token}", *overrides]).noise


def test_every_yaml_has_target_and_seed():
    tokens = sorted(p.stem for p in CONF_NOISE.glob("*.yaml"))
    assert {"none", "symmetric", "asymmetric", "instance", "transition", "human"} <= set(tokens)
    for token in tokens:
        cfg = compose_noise(token)
        assert cfg._target_.startswith("losslab.datasets.noise.") and cfg.seed == 0
        assert isinstance(instantiate(cfg), LabelNoise)


def test_one_module_per_noise_model_as_in_the_config_tree():
    """Every YAML that names a model itself (``noise=<token>``) has its class in
    ``losslab/datasets/noise/<token>.py``, importable from the package as its
    ``_target_`` says; the presets over them name no model of their own."""
    from omegaconf import OmegaConf

    models = [p for p in CONF_NOISE.glob("*.yaml") if "_target_" in OmegaConf.load(p)]
    assert len(models) == 6
    for path in models:
        target = OmegaConf.load(path)._target_
        cls = instantiate({"_target_": target}).__class__
        assert target == f"losslab.datasets.noise.{cls.__name__}"
        assert cls.__module__ == f"losslab.datasets.noise.{path.stem}"


@pytest.mark.parametrize(
    ("token", "k", "swaps", "too_few"),
    [
        ("ldr_letter", 26, [(1, 3), (2, 6), (4, 5), (7, 13), (8, 11), (10, 23), (12, 22),
                            (14, 16), (15, 17), (20, 21)], 23),
        ("ldr_vowel", 11, [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)], 9),
        ("ldr_news20", 20, [(2, 5), (3, 4), (7, 8), (9, 10), (11, 12), (15, 18)], 18),
    ],
)  # fmt: skip
def test_ldr_presets(token, k, swaps, too_few):
    model = instantiate(compose_noise(token, "noise.rate=0.3"))
    expected = {a: b for a, b in swaps} | {b: a for a, b in swaps}
    assert isinstance(model, AsymmetricNoise) and model.class_map(k) == expected
    noisy = model.apply(make_bundle(balanced(20_000, k), k))
    clean, y = noisy.train.y_clean.numpy(), noisy.train.y.numpy()
    flipped = clean != y
    assert all(y[i] == expected[clean[i]] for i in np.flatnonzero(flipped))
    mapped = np.isin(clean, list(expected))
    assert within(float(flipped[mapped].mean()), 0.3, int(mapped.sum()))
    with pytest.raises(ValueError, match=rf"noise\.pairs=.*class {too_few} .*K={too_few}"):
        model.apply(make_bundle(balanced(100, too_few), too_few))  # too few classes


@pytest.mark.parametrize("token", ["symmetric", "asymmetric", "instance", "none"])
def test_yaml_defaults_work_on_ten_classes(token):
    model = instantiate(compose_noise(token))
    data = features_bundle(n=1000, k=10, d=64)
    noisy = model.apply(data)
    assert torch.equal(noisy.test.y, data.test.y)
    assert noisy.train.is_noisy.any() == (token != "none")


@pytest.mark.parametrize("token", ["transition", "human"])
def test_yaml_without_file_fails_clearly_at_apply(token):
    model = instantiate(compose_noise(token))
    with pytest.raises(ValueError, match=rf"noise={token} needs noise\.file="):
        model.apply(features_bundle(n=100, k=10))


def test_yaml_overrides(tmp_path):
    path = write_matrix(tmp_path, T4, ".csv")
    model = instantiate(compose_noise("transition", f"noise.file={path}"))
    assert isinstance(model, TransitionNoise) and model.matrix.shape == (4, 4)
    model = instantiate(compose_noise("asymmetric", "noise.mapping=pairs", "noise.pairs=[[0,1]]"))
    assert model.class_map(10) == {0: 1}
    model = instantiate(compose_noise("symmetric", "noise.exact=true", "noise.include_true=true"))
    assert model.exact and model.include_true
