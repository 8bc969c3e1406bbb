"""Hugging Face image data sets: saved and data-file folders, conversion, splits, errors.

Every data set here is built in the test and read from a temporary folder; the
hub is never reached (offline mode is forced).
"""

from __future__ import annotations

import pickle

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from losslab.datasets.base import ImageSource
from losslab.datasets.hf import HFImageSource, load_hf, to_chw_uint8
from tests.conftest import run_train

FEATURES = datasets.Features(
    {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No hub access, and any cache written by ``load_dataset`` stays in tmp."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    datasets.disable_progress_bars()


def image(i: int) -> Image.Image:
    """Image ``i``: 8x8 RGB for even i, 10x12 grayscale for odd i (to exercise conversion)."""
    rng = np.random.default_rng(i)
    if i % 2 == 0:
        return Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8))


def make_split(start: int, n: int) -> datasets.Dataset:
    ids = range(start, start + n)
    return datasets.Dataset.from_dict(
        {"image": [image(i) for i in ids], "label": [i % 3 for i in ids]}, features=FEATURES
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A DatasetDict (train 30, test 9, validation 6 images; 3 classes) saved to disk."""
    path = tmp_path_factory.mktemp("hf") / "toy"
    datasets.disable_progress_bars()
    datasets.DatasetDict(
        train=make_split(0, 30), test=make_split(100, 9), validation=make_split(200, 6)
    ).save_to_disk(str(path))
    return str(path)


def load(saved: str, **kwargs):
    return load_hf(**{"path": saved, "num_classes": 3, "input_shape": [3, 8, 8], **kwargs})


def test_saved_dataset_dict_loads_as_uint8_with_carved_val(saved):
    data = load(saved)
    assert data.sizes() == {"train": 27, "val": 3, "test": 9}
    assert data.num_classes == 3 and data.input_shape == (3, 8, 8)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8 and split.x.shape[1:] == (3, 8, 8)
        assert split.y.dtype == torch.int64 and torch.equal(split.y, split.y_clean)
        assert not split.is_noisy.any()
    # train and val partition the official training split, stratified (1 per class in val)
    positions = torch.cat([data.train.source_index, data.val.source_index]).sort().values
    assert torch.equal(positions, torch.arange(30))
    assert torch.bincount(data.val.y, minlength=3).tolist() == [1, 1, 1]
    assert torch.equal(data.train.y, data.train.source_index % 3)
    # the official test split is kept whole and in order
    assert torch.equal(data.test.y, torch.arange(100, 109) % 3)
    assert data.info["loader"] == "memory" and data.info["opened_with"] == "load_from_disk"
    assert data.info["inputs"] == "uint8 images"


def test_pixels_are_kept_converted_and_resized(saved):
    data = load(saved)
    k = int((data.train.source_index == 4).nonzero())  # image 4: 8x8 RGB, kept as is
    assert torch.equal(data.train.x[k], torch.from_numpy(np.array(image(4))).permute(2, 0, 1))
    k = int((data.train.source_index == 5).nonzero())  # image 5: 10x12 L -> 8x8 RGB
    expected = np.asarray(image(5).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    assert torch.equal(data.train.x[k], torch.from_numpy(expected.copy()).permute(2, 0, 1))
    assert torch.equal(data.train.x[k][0], data.train.x[k][1])  # grey: equal channels

    gray = load(saved, input_shape=[1, 6, 5])
    assert gray.train.x.shape[1:] == (1, 6, 5) and gray.input_shape == (1, 6, 5)
    assert len(gray.transform.mean) == 1


def test_val_split_is_taken_when_named(saved):
    data = load(saved, val_split="validation")
    assert data.sizes() == {"train": 30, "val": 6, "test": 9}
    assert torch.equal(data.val.y, torch.arange(200, 206) % 3)
    assert torch.equal(data.train.source_index, torch.arange(30))
    assert data.info["splits"]["val"] == "validation"


def test_mean_std_from_training_split_and_batch_transform(saved):
    data = load(saved, augment=True, crop_padding=2)
    t = data.transform
    assert t.scale == pytest.approx(1 / 255) and t.crop_padding == 2 and t.flip
    x = data.train.x.double() / 255  # the training split only, not val or test
    np.testing.assert_allclose(t.mean, x.mean(dim=(0, 2, 3)).numpy(), rtol=1e-9)
    np.testing.assert_allclose(t.std, x.std(dim=(0, 2, 3), unbiased=False).numpy(), rtol=1e-9)
    everything = torch.cat([data.train.x, data.val.x, data.test.x]).double() / 255
    assert not np.allclose(t.mean, everything.mean(dim=(0, 2, 3)).numpy(), rtol=1e-6)

    given = load(saved, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2])
    assert given.transform.mean == (0.5, 0.4, 0.3) and given.transform.std == (0.2, 0.2, 0.2)
    assert not given.transform.augments  # augment is off by default


def test_lazy_image_source_above_the_memory_limit_or_when_asked(saved):
    memory = load(saved)
    lazy = load(saved, memory_limit_mb=1e-4)  # ~100 bytes: far less than 45 images
    assert lazy.info["loader"] == "dataloader"
    assert isinstance(load(saved, loader="dataloader").train.x, ImageSource)
    assert isinstance(load(saved, loader="memory", memory_limit_mb=0).train.x, torch.Tensor)
    for a, b in ((memory.train, lazy.train), (memory.val, lazy.val), (memory.test, lazy.test)):
        assert isinstance(b.x, ImageSource) and not isinstance(b.x, torch.Tensor)
        assert len(b.x) == len(a.x) and torch.equal(b.y, a.y)
        assert torch.equal(torch.stack([b.x[i] for i in range(len(b.x))]), a.x)
    assert lazy.sizes() == memory.sizes()
    assert lazy.transform == memory.transform
    # statistics from a sample of stats_samples training images: the same sample either way
    sampled = load(saved, memory_limit_mb=1e-4, stats_samples=5)
    assert not np.allclose(sampled.transform.mean, memory.transform.mean)
    assert sampled.transform == load(saved, stats_samples=5).transform
    # DataLoader workers receive the source pickled
    source = pickle.loads(pickle.dumps(lazy.test.x))
    assert torch.equal(source[3], memory.test.x[3])


def test_array_images_and_plain_dataset(tmp_path):
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    ds = datasets.Dataset.from_dict({"pixels": list(hwc), "y": [i % 2 for i in range(12)]})
    ds.save_to_disk(str(tmp_path / "plain"))
    with pytest.raises(ValueError, match=r"available splits: \['train'\]"):
        load_hf(path=str(tmp_path / "plain"), num_classes=2, input_shape=[3, 4, 4])
    data = load_hf(
        path=str(tmp_path / "plain"),
        test_split="train",
        image_key="pixels",
        label_key="y",
        num_classes=2,
        input_shape=[3, 4, 4],
        val_fraction=0.0,
    )
    assert torch.equal(data.test.x, torch.from_numpy(hwc).permute(0, 3, 1, 2))
    assert np.array_equal(to_chw_uint8(hwc[0], (3, 4, 4)), hwc[0].transpose(2, 0, 1))
    # floats are not pixels: rounding them to 0..255 would change them
    with pytest.raises(ValueError, match="not integer pixels"):
        to_chw_uint8(hwc[0] / 255.0, (3, 4, 4))
    assert isinstance(HFImageSource(ds, "pixels", (3, 4, 4))[1], torch.Tensor)


def test_local_data_files_through_load_dataset(tmp_path):
    root = tmp_path / "folder"
    for split, n in (("train", 10), ("test", 4)):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(n // 2):
                Image.fromarray(np.full((6, 6, 3), 20 * i, np.uint8)).save(
                    root / split / label / f"{i}.png"
                )
    data = load_hf(path=str(root), num_classes=2, input_shape=[3, 4, 4], val_fraction=0.2)
    assert data.sizes() == {"train": 8, "val": 2, "test": 4}
    assert data.info["opened_with"] == "load_dataset"


def test_missing_local_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved with Dataset.save_to_disk"):
        load_hf(path=str(tmp_path / "nowhere"), num_classes=3, input_shape=[3, 8, 8])


def test_unknown_hub_id_offline():
    with pytest.raises(FileNotFoundError, match=r"hub id.*no network may be available"):
        load_hf(path="no-such-user/no-such-set", num_classes=3, input_shape=[3, 8, 8])


def test_missing_split_lists_the_splits(saved):
    with pytest.raises(ValueError, match=r"test_split='valid'.*\['test', 'train', 'validation'\]"):
        load(saved, test_split="valid")
    with pytest.raises(ValueError, match=r"val_split='dev'"):
        load(saved, val_split="dev")


def test_missing_columns_are_listed(saved):
    with pytest.raises(ValueError, match=r"image_key='img'.*\['image', 'label'\]"):
        load(saved, image_key="img")
    with pytest.raises(ValueError, match=r"label_key='fine_label'.*\['image', 'label'\]"):
        load(saved, label_key="fine_label")


def test_labels_out_of_range_and_declared_classes(saved):
    with pytest.raises(ValueError, match=r"labels out of range.*\[2\].*num_classes=2"):
        load(saved, num_classes=2)
    with pytest.raises(ValueError, match="num_classes=4 but the data has 3 classes"):
        load(saved, num_classes=4)


def test_unlabelled_split_is_named(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    train = datasets.Dataset.from_dict(
        {"image": [image(i) for i in range(6)], "label": [0, 1, 2] * 2}, features=features
    )
    test = datasets.Dataset.from_dict(
        {"image": [image(9)] * 2, "label": [-1, -1]}, features=features
    )
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(tmp_path / "unlabelled"))
    with pytest.raises(ValueError, match=r"split 'test': \[-1\].*-1 marks an unlabelled"):
        load(str(tmp_path / "unlabelled"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": [4, 8, 8]}, r"Image column.*C one of \[1, 3\]"),
        ({"input_shape": [8, 8]}, r"image_key='image' is an Image column.*\[C, H, W\]"),
        ({"input_shape": [3, 0, 8]}, r"input_shape=\[3, 0, 8\] is invalid"),
        ({"loader": "gpu"}, r"dataset.loader='gpu' is invalid; choose one of 'auto'"),
        ({"memory_limit_mb": "big"}, r"dataset.memory_limit_mb='big' is invalid"),
        ({"augment": "yes"}, "dataset.augment='yes' is invalid: must be true or false"),
        ({"crop_padding": -1}, "crop_padding=-1 is invalid"),
        ({"stats_samples": 0}, "stats_samples=0 is invalid"),
        ({"mean": [0.5, 0.5, 0.5]}, "both dataset.mean and dataset.std"),
        ({"mean": [0.5], "std": [0.2]}, r"dataset.mean=\[0.5\] is invalid: must be 3"),
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
        ({"name": "cfg"}, "set dataset.name=null"),
        ({"path": ""}, "dataset.path=''"),
        ({"path": None, "num_classes": None}, "needs dataset.path, dataset.num_classes"),
    ],
)
def test_invalid_arguments(saved, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load(saved, **kwargs)


def test_yaml_composes_and_leaves_the_declaration_to_the_user():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset=hf", "model=cnn"])
    OmegaConf.resolve(cfg)
    d = cfg.dataset
    assert d._target_ == "losslab.datasets.hf.load_hf" and d.path is None
    assert (d.train_split, d.test_split, d.val_split) == ("train", "test", None)
    assert (d.image_key, d.label_key) == ("image", "label")
    assert (d.augment, d.crop_padding, d.flip) == (False, 4, True)
    assert d.split_seed == 0 and d.val_fraction == 0.1 and d.loader == "auto"
    assert cfg.model.num_classes is None and cfg.model.input_shape is None


def test_trains_one_epoch_through_the_cli(saved, tmp_path):
    code, results = run_train(
        tmp_path / "run",
        "dataset=hf",
        f"dataset.path={saved}",
        "dataset.num_classes=3",
        "dataset.input_shape=[3,8,8]",
        "model=cnn",
        "model.width=4",
        "trainer.epochs=1",
        "trainer.batch_size=16",
        "trainer.device=cpu",
    )
    assert code == 0, results
    assert results["status"] == "completed"


# ------------------------------------------------------------------ arrays: floats and vectors


def save_arrays(path, train_x, test_x, feature=None, *, num_classes=3):
    """A DatasetDict with an array column ``x`` and a ClassLabel ``label``, saved to ``path``."""
    features = None
    if feature is not None:
        label = datasets.ClassLabel(num_classes=num_classes)
        features = datasets.Features({"x": feature, "label": label})

    def split(x):
        labels = [i % num_classes for i in range(len(x))]
        return datasets.Dataset.from_dict({"x": list(x), "label": labels}, features=features)

    datasets.DatasetDict(train=split(train_x), test=split(test_x)).save_to_disk(str(path))
    return str(path)


def standardised(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Standard-normal features: most values lie outside [0, 1], a third below 0."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_float_vectors_are_served_as_floats_unchanged(tmp_path):
    train, test = standardised(60, 40), standardised(12, 40, seed=1)
    path = save_arrays(
        tmp_path / "vectors", train, test, datasets.Sequence(datasets.Value("float32"), length=40)
    )
    data = load_hf(path=path, image_key="x", num_classes=3, input_shape=[40], val_fraction=0.1)
    assert data.input_shape == (40,) and data.train.x.shape == (54, 40)
    for split, source in ((data.train, train), (data.val, train), (data.test, test)):
        assert split.x.dtype == torch.float32
        assert torch.equal(split.x, torch.from_numpy(source[split.source_index.numpy()]))
    # per-feature statistics of the training split (after the validation split is carved)
    t = data.transform
    assert t.scale == 1.0 and len(t.mean) == 40 and not t.augments
    x = data.train.x.double()
    np.testing.assert_allclose(t.mean, x.mean(0).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t.std, x.std(0, unbiased=False).numpy(), rtol=1e-9)


def test_float_arrays_outside_0_1_are_not_rounded_into_pixels(tmp_path):
    train, test = standardised(30, 40), standardised(9, 40, seed=1)
    path = save_arrays(
        tmp_path / "rows",
        train.reshape(30, 1, 40),
        test.reshape(9, 1, 40),
        datasets.Array2D((1, 40), "float32"),
    )
    data = load_hf(path=path, image_key="x", num_classes=3, input_shape=[1, 1, 40])
    assert data.train.x.dtype == torch.float32 and data.transform.scale == 1.0
    assert torch.equal(data.test.x, torch.from_numpy(test.reshape(9, 1, 1, 40)))
    # float images in [0, 1] stay floats too: rounding them to 0..255 would lose precision
    chw = np.random.default_rng(2).random((12, 3, 4, 4))
    path = save_arrays(tmp_path / "unit", chw[:9], chw[9:], datasets.Array3D((3, 4, 4), "float64"))
    data = load_hf(path=path, image_key="x", num_classes=3, input_shape=[3, 4, 4], val_fraction=0)
    assert data.test.x.dtype == torch.float32
    assert torch.equal(data.test.x, torch.from_numpy(chw[9:].astype(np.float32)))


def test_integer_pixel_arrays_stay_uint8(tmp_path):
    hwc = np.random.default_rng(0).integers(0, 256, (12, 4, 4, 3))  # int64, as lists become
    path = save_arrays(tmp_path / "pixels", hwc[:9], hwc[9:])
    data = load_hf(path=path, image_key="x", num_classes=3, input_shape=[3, 4, 4], val_fraction=0)
    assert data.test.x.dtype == torch.uint8 and data.transform.scale == pytest.approx(1 / 255)
    assert torch.equal(data.test.x, torch.from_numpy(hwc[9:].transpose(0, 3, 1, 2)).byte())


@pytest.mark.parametrize(
    ("train", "feature", "shape", "message"),
    [
        (  # pixels out of range: clipping would change them
            np.full((6, 4, 4), 300),
            None,
            [1, 4, 4],
            r"column 'x'.*300.*outside 0\.\.255",
        ),
        (  # integers a float32 cannot hold exactly
            np.full((6, 3), 2**25 + 1),
            None,
            [3],
            r"column 'x'.*33554433.*float32",
        ),
        (  # missing values
            np.where(np.eye(6, 3) > 0, np.nan, 1.0),
            None,
            [3],
            r"column 'x'.*NaN",
        ),
        (  # a float image would have to be resized
            np.zeros((6, 1, 6, 6)),
            datasets.Array3D((1, 6, 6), "float64"),
            [1, 4, 4],
            r"column 'x'.*\[1, 6, 6\].*input_shape=\[1, 4, 4\]",
        ),
        (  # a vector of the wrong length
            np.zeros((6, 5)),
            None,
            [4],
            r"column 'x'.*\[5\].*input_shape=\[4\]",
        ),
    ],
)
def test_lossy_conversions_are_errors(tmp_path, train, feature, shape, message):
    path = save_arrays(tmp_path / "bad", train, train[:3], feature)
    with pytest.raises(ValueError, match=message):
        load_hf(path=path, image_key="x", num_classes=3, input_shape=shape, val_fraction=0)


def test_images_need_an_image_shape_and_vectors_no_augmentation(saved, tmp_path):
    with pytest.raises(ValueError, match=r"image_key='image'.*Image.*\[C, H, W\]"):
        load(saved, input_shape=[192])
    path = save_arrays(tmp_path / "v", standardised(6, 3), standardised(3, 3))
    with pytest.raises(ValueError, match=r"dataset.augment=true.*images"):
        load_hf(path=path, image_key="x", num_classes=3, input_shape=[3], augment=True)


def test_float_vectors_train_an_mlp_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    centres = 1.5 * rng.standard_normal((3, 40))
    y = np.arange(360) % 3
    x = (centres[y] + rng.standard_normal((360, 40))).astype(np.float32)
    x = (x - x[:300].mean(0)) / x[:300].std(0)  # standardised, as the report's 40 features
    path = save_arrays(
        tmp_path / "vec", x[:300], x[300:], datasets.Sequence(datasets.Value("float32"))
    )
    code, results = run_train(
        tmp_path / "run",
        "dataset=hf",
        f"dataset.path={path}",
        "dataset.image_key=x",
        "dataset.num_classes=3",
        "dataset.input_shape=[40]",
        "model=mlp",
        "model.width=32",
        "trainer.epochs=3",
        "trainer.batch_size=32",
        "trainer.device=cpu",
    )
    assert code == 0, results.get("error")
    assert results["data"]["input_shape"] == [40]
    assert results["final"]["test"]["acc"] > 0.9
