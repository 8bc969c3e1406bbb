"""uint8 images with on-device augmentation, lazy sources, and the choice of serving path."""

from __future__ import annotations

from tests.conftest import read_metrics, run_train, strip_times

IMAGES = (
    "dataset._target_=tests.runner.fake_images.load_images",
    "dataset.num_classes=4",
    "dataset.input_shape=[3,8,8]",
    "model=cnn",
    "model.width=4",
    "trainer.epochs=2",
    "trainer.batch_size=32",
)


def test_uint8_images_train_in_memory(tmp_path):
    code, results = run_train(tmp_path, *IMAGES)
    assert code == 0, results.get("error")
    assert results["data"]["loader"] == "memory"
    assert results["data"]["sizes"] == {"train": 216, "val": 24, "test": 80}


def test_lazy_source_serves_the_same_batches_through_either_path(tmp_path):
    _, memory = run_train(
        tmp_path / "memory", *IMAGES, "+dataset.lazy=true", "dataset.loader=memory"
    )
    _, stream = run_train(
        tmp_path / "stream",
        *IMAGES,
        "+dataset.lazy=true",
        "dataset.loader=dataloader",
        "trainer.num_workers=0",
    )
    assert memory["data"]["loader"] == "memory" and stream["data"]["loader"] == "dataloader"
    # same order, same crops and flips, same metrics: the path is an implementation detail
    assert strip_times(read_metrics(tmp_path / "memory")) == strip_times(
        read_metrics(tmp_path / "stream")
    )


def test_auto_streams_when_over_the_memory_limit(tmp_path):
    code, results = run_train(
        tmp_path, *IMAGES, "+dataset.lazy=true", "+dataset.memory_limit_mb=0.01"
    )
    assert code == 0, results.get("error")
    assert results["data"]["loader"] == "dataloader"


def test_bad_loader_is_a_config_error(tmp_path, capsys):
    code, results = run_train(tmp_path, "dataset.loader=gpu", "trainer.epochs=1")
    err = capsys.readouterr().err
    assert code == 2 and results is None and list(tmp_path.iterdir()) == []
    assert "dataset.loader='gpu'" in err and "memory" in err


def test_symmetric_noise_is_realised_recorded_and_shared_across_losses(tmp_path):
    import json
    import math

    noisy = ("noise=symmetric", "noise.rate=0.4", "trainer.epochs=1")
    code, a = run_train(tmp_path / "a", *noisy, "loss=ce", "seed=0")
    assert code == 0, a.get("error")
    _, b = run_train(tmp_path / "b", *noisy, "loss=gce", "seed=1")
    n = a["data"]["sizes"]["train"]
    assert abs(a["noise"]["realised_rate"] - 0.4) < 4 * math.sqrt(0.4 * 0.6 / n)
    assert a["noise"]["type"] == "symmetric" and a["noise"]["rate"] == 0.4
    # different loss and seed, same noise.seed: the same noisy labels
    assert a["noise"]["labels_sha"] == b["noise"]["labels_sha"]
    _, c = run_train(tmp_path / "c", *noisy, "noise.seed=1")
    assert c["noise"]["labels_sha"] != a["noise"]["labels_sha"]
    matrix = json.loads((tmp_path / "a" / "noise.json").read_text())["transition_matrix"]
    diagonal = [matrix[k][k] for k in range(10)]
    assert all(abs(sum(row) - 1) < 1e-9 for row in matrix) and max(diagonal) < 0.75
