"""On a CUDA GPU: training steps never wait for the GPU (no host synchronisation).

Each run trains one epoch with CUDA's sync debug mode set to "error" from the
third step to the last but one: any ``.item()``, host copy of a result,
data-dependent shape or pageable host-to-device copy inside a step fails the
run. The first steps (lazy initialisation, autotuning) and the end of the
epoch (one read of the running sums, evaluation) are outside the window.
Skipped without a GPU.
"""

from __future__ import annotations

import pytest
import torch

from losslab.runner import console
from tests.conftest import run_train
from tests.losses.conftest import TOKENS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

IMAGES = (
    "dataset._target_=tests.runner.fake_images.load_images",
    "dataset.num_classes=4",
    "dataset.input_shape=[3,8,8]",
    "model=cnn",
)


class SyncGuard(console.PlainReporter):
    """Turns CUDA's sync debug mode to "error" for the middle steps of each epoch."""

    checked = 0

    def start(self, epochs: int, batches: int, first_epoch: int) -> None:
        super().start(epochs, batches, first_epoch)
        self.batches, self.done = batches, 0

    def step(self) -> None:
        self.done += 1
        if self.done == 2:
            torch.cuda.set_sync_debug_mode("error")
        elif self.done == self.batches - 1:
            torch.cuda.set_sync_debug_mode(0)
        if 2 < self.done < self.batches:
            SyncGuard.checked += 1

    def epoch_end(self, record: dict) -> None:
        torch.cuda.set_sync_debug_mode(0)
        super().epoch_end(record)


@pytest.fixture
def guard(monkeypatch):
    monkeypatch.setattr(console, "make_reporter", lambda c: SyncGuard())
    SyncGuard.checked = 0
    yield SyncGuard
    torch.cuda.set_sync_debug_mode(0)


def _train_guarded(tmp_path, guard, *overrides):
    code, results = run_train(
        tmp_path, "trainer.device=cuda", "trainer.epochs=1", "trainer.batch_size=16", *overrides
    )
    assert code == 0 and results["status"] == "completed", results.get("error")
    assert guard.checked >= 5


@pytest.mark.parametrize("token", TOKENS)
def test_no_sync_in_steps_of_every_loss(tmp_path, guard, token):
    _train_guarded(tmp_path, guard, f"loss={token}", "trainer.grad_clip=5")


@pytest.mark.parametrize(
    "overrides",
    [
        ("regularizer=[entropy,logit_l2,logz,prior_kl,elr,opl]",),
        ("regularizer=[vat]",),
        ("optimizer=sam", "augment.mixup_alpha=1.0"),
        ("optimizer=adamw", "trainer.precision=bf16"),
        (*IMAGES, "augment.cutmix_alpha=1.0", "trainer.precision=bf16"),
        (*IMAGES, "loss=aldr", "noise=symmetric", "noise.rate=0.4"),
        (*IMAGES, "+dataset.lazy=true", "dataset.loader=dataloader", "trainer.num_workers=2"),
    ],
    ids=[
        "regularizers",
        "vat",
        "sam-mixup",
        "adamw-bf16",
        "cnn-cutmix-bf16",
        "cnn-aldr-noise",
        "cnn-dataloader",
    ],
)
def test_no_sync_in_steps_of_procedures(tmp_path, guard, overrides):
    _train_guarded(tmp_path, guard, *overrides)
