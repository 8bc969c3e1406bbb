"""The search spaces beside the losses: every declared space names real parameters, with
values the loss accepts; grids and TPE propose what the protocol says."""

from __future__ import annotations

from importlib.resources import files

import pytest
import torch
from omegaconf import OmegaConf

from losslab.runner.build import build
from losslab.runner.settings import ConfigError
from losslab.runner.study.run import compose
from losslab.runner.study.search import Search
from losslab.runner.study.spaces import (
    SPACE_DIR,
    Interval,
    Space,
    check_space,
    expand,
    grid,
    grid_size,
    load_space,
    parse_params,
)

TREE = files("losslab.conf")


def _declared(group: str) -> list[str]:
    folder = TREE / SPACE_DIR / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


LOSS_SPACES = _declared("loss")
OPTIMIZER_SPACES = _declared("optimizer")


def test_spaces_are_declared():
    # the grids of the LDR protocol's losses, at least (github.com/DixianZhu/LDR experiment.py)
    assert {"gce", "ldr", "aldr", "nce_rce", "sce", "cs", "ww", "rll", "js"} <= set(LOSS_SPACES)
    assert "sgd" in OPTIMIZER_SPACES


def _points(space: Space) -> list[dict]:
    """Each value of each key on its own, the others at the first value (all, when small)."""
    if grid_size(space.params) <= 64:
        return [expand({space.full(k): v for k, v in p.items()}) for p in grid(space.params)]
    out = []
    for key, values in space.params.items():
        for value in values:
            out.append(expand({space.full(key): value}))
    return out


@pytest.mark.parametrize("loss", LOSS_SPACES)
def test_every_loss_space_names_real_parameters_with_values_the_loss_takes(loss):
    space = load_space([TREE], "loss", loss, "loss")
    assert space.source and space.params, f"space/loss/{loss}.yaml declares nothing"
    cfg = compose([f"loss={loss}"], [])
    check_space(space, OmegaConf.to_container(cfg.loss, resolve=False))
    torch.manual_seed(0)
    logits = (torch.randn(16, 10, dtype=torch.float64) * 3).requires_grad_()
    target = torch.randint(0, 10, (16,))
    values = {
        "num_samples": 16,
        "num_classes": 10,
        "class_counts": torch.bincount(target, minlength=10),
    }
    first = _points(space)[0]  # the overrides reach the loss's config
    node = compose([f"loss={loss}", *(f"{k}={v!r}" for k, v in first.items())], []).loss
    assert all(OmegaConf.select(node, k[len("loss.") :]) == v for k, v in first.items())
    for point in _points(space):
        node = cfg.loss.copy()
        for key, value in point.items():
            OmegaConf.update(node, key[len("loss.") :], value)
        module = build("loss", node, **values).double()
        out = module(logits, target, index=torch.arange(16))
        (grad,) = torch.autograd.grad(out, logits)
        assert torch.isfinite(out) and torch.isfinite(grad).all(), (loss, point)


@pytest.mark.parametrize("optimizer", OPTIMIZER_SPACES)
def test_every_optimizer_space_names_real_parameters(optimizer):
    space = load_space([TREE], "optimizer", optimizer, "optimizer")
    assert space.source and space.params
    cfg = compose([f"optimizer={optimizer}"], [])
    check_space(space, OmegaConf.to_container(cfg.optimizer, resolve=False))
    for point in _points(space):
        node = compose([f"optimizer={optimizer}", *(f"{k}={v!r}" for k, v in point.items())], [])
        opt = build("optimizer", node.optimizer)([torch.nn.Parameter(torch.zeros(2))])
        for key, value in point.items():
            assert opt.param_groups[0][key.split(".", 1)[1]] == value


def test_a_space_naming_a_parameter_the_loss_lacks_is_refused():
    space = Space("loss", "gce", {"qq": [0.1]}, "x")
    with pytest.raises(ConfigError, match=r"names qq, which loss=gce does not have.*q"):
        check_space(space, {"_target_": "x", "q": 0.7})


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "the space is empty"),
        (None, "the space is empty"),
        ({"q": []}, "non-empty list"),
        ({"q": {"low": 1.0, "high": 0.5}}, "empty range"),
        ({"q": {"low": 0.0, "high": 1.0, "log": True}}, "low > 0 with log"),
        ({"q": {"lo": 0.1}}, "is not a range"),
        ({"alpha,beta": [[0.1, 9.9], [5.0]]}, "lists of 2 values"),
    ],
)
def test_bad_spaces_name_what_is_wrong(params, message):
    with pytest.raises(ConfigError, match=message):
        parse_params("space/loss/x.yaml", params)


def test_tied_parameters_vary_together():
    params = parse_params("x", {"alpha,beta": [[0.1, 9.9], [5.0, 5.0]], "lr": [0.1, 0.01]})
    space = Space("loss", "nce_rce", params, "x")
    assert grid_size(params) == 4
    points = [expand({space.full(k): v for k, v in p.items()}) for p in grid(params)]
    assert points[0] == {"loss.alpha": 0.1, "loss.beta": 9.9, "loss.lr": 0.1}
    assert {(p["loss.alpha"], p["loss.beta"]) for p in points} == {(0.1, 9.9), (5.0, 5.0)}


def test_grid_when_it_fits_the_budget_tpe_otherwise():
    small = Search({"loss.q": [0.1, 0.5]}, 6, seed=0, startup_trials=3, direction="maximize")
    assert (small.method, small.budget) == ("grid", 2)
    assert [small.ask()[1] for _ in range(2)] == [{"loss.q": 0.1}, {"loss.q": 0.5}]
    assert small.done
    big = Search(
        {"loss.q": [0.1, 0.3, 0.5, 0.7]}, 3, seed=0, startup_trials=1, direction="maximize"
    )
    assert (big.method, big.budget) == ("tpe", 3)
    ranged = Search(
        {"optimizer.lr": Interval(1e-3, 1.0, True)},
        50,
        seed=0,
        startup_trials=5,
        direction="maximize",
    )
    assert ranged.method == "tpe"  # a range has no grid, whatever the budget


def _replay(seed: int, results) -> list[dict]:
    search = Search(
        {"loss.q": [0.1, 0.3, 0.5, 0.7, 0.9], "optimizer.lr": [0.01, 0.1], "x,y": [[1, 2], [3, 4]]},
        8,
        seed=seed,
        startup_trials=3,
        direction="maximize",
    )
    asked = []
    while not search.done:
        number, values = search.ask()
        asked.append(values)
        search.tell(number, results(values))
    return asked


def test_tpe_proposes_distinct_trials_and_replays_them_from_the_seed_and_the_results():
    def score(values):
        return values["loss.q"] - values["optimizer.lr"] + values["x,y"][0]

    first = _replay(0, score)
    assert len(first) == 8
    assert len({repr(sorted(v.items())) for v in first}) == 8  # no configuration twice
    assert _replay(0, score) == first  # what a study run again proposes
    assert _replay(1, score) != first


def test_a_failed_trial_is_told_and_the_search_goes_on():
    asked = _replay(0, lambda values: None if values["loss.q"] > 0.5 else 1.0)
    assert len(asked) == 8


def test_tpe_on_a_small_discrete_space_still_tries_new_points():
    # 6 points, budget 5: TPE would re-propose its best; every trial is still new
    search = Search(
        {"a": [1, 2, 3], "b": [1, 2]}, 5, seed=0, startup_trials=1, direction="maximize"
    )
    seen = []
    while not search.done:
        number, values = search.ask()
        seen.append((values["a"], values["b"]))
        search.tell(number, float(values["a"] * 10 + values["b"]))
    assert len(set(seen)) == 5
