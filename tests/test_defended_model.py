"""DefendedClassifier composes with Classifier: fitting, pass counting, attributes, acceleration, kinds."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import robust
from tests.fixtures.defenses import NoisyInput
from robust.cli import main
from robust.defense import DefendedClassifier, PreprocessingDefense, TrainingDefense, undefended


def small_net(seed: int = 0) -> nn.Module:
    """A seeded conv net for 1x8x8 inputs with batch norm and dropout, so train and eval modes differ."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                             nn.Dropout(0.2), nn.Linear(4 * 8 * 8, 10)).eval()


def test_fitting_builds_a_graph_for_the_inner_weights(digits: Any) -> None:
    net = small_net()
    defended = robust.create_defense("spatial-smoothing").wrap(robust.Classifier(net, device="cpu"))
    x, y = digits.x[:16], digits.y[:16]
    assert not defended(x).requires_grad  # outside the block, a plain input builds no graph
    with defended.fitting() as fitted:
        assert fitted is defended
        assert net.training and all(m.training for m in net.modules())
        logits = defended(x)
        assert logits.requires_grad
        nn.functional.cross_entropy(logits, y).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    assert all(float(g.abs().sum()) > 0 for g in grads if g is not None)
    assert not defended(x).requires_grad and not defended.inner(x).requires_grad


def test_fitting_restores_train_and_eval_modes() -> None:
    net = small_net()
    defended = robust.create_defense("spatial-smoothing").wrap(robust.Classifier(net, device="cpu"))
    with defended.fitting():
        assert net.training
    assert not net.training and not any(m.training for m in net.modules())


def test_fitting_nests_and_restores_the_graph_mode(digits: Any) -> None:
    inner = robust.Classifier(small_net(), device="cpu")
    defended = robust.create_defense("jpeg").wrap(inner)
    x = digits.x[:4]
    with inner.fitting():
        with defended.fitting():
            assert defended(x).requires_grad
        assert inner(x).requires_grad, "leaving the outer model's block must not end the inner one's"
    assert not inner(x).requires_grad and not defended(x).requires_grad


def test_passes_are_counted_once_by_the_shared_counter(digits: Any) -> None:
    inner = robust.Classifier(small_net(), device="cpu")
    defended = robust.create_defense("spatial-smoothing").wrap(inner)
    assert defended.counter is inner.counter
    x = digits.x[:8].clone().requires_grad_(True)
    defended(x).sum().backward()
    assert (inner.counter.forward, inner.counter.backward) == (1, 1)
    defended.predict(digits.x[:8])
    assert (inner.counter.forward, inner.counter.backward) == (2, 1)
    chained = robust.create_defense("jpeg").wrap(defended)
    chained(digits.x[:8].clone().requires_grad_(True)).sum().backward()
    assert chained.counter is inner.counter
    assert (inner.counter.forward, inner.counter.backward) == (3, 2)


def constant_model(label: int) -> robust.Classifier:
    """Predicts ``label`` whatever the input: its gradient is zero and no attack ever fools it."""
    linear = nn.Linear(64, 10)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.bias[label] = 5.0
    return robust.Classifier(nn.Sequential(nn.Flatten(), linear), device="cpu")


@pytest.mark.parametrize("samples", [1, 3, 5])
def test_eot_counts_k_forward_passes_per_attack_step(digits: Any, samples: int) -> None:
    model = constant_model(3)
    defended = NoisyInput(sigma=0.1, eot_samples=samples).wrap(model)
    x, y = digits.x[:8], torch.full((8,), 3)
    steps = 4
    res = robust.create_attack("pgd", steps=steps)(defended, x, y, eps=0.1)
    assert not bool(res.success.any())
    assert res.forward_passes == steps * samples
    assert res.backward_passes == steps * samples


def test_naive_eot_mode_is_one_pass_per_step(digits: Any) -> None:
    defended = NoisyInput(sigma=0.1, gradient="exact", eot_samples=5).wrap(constant_model(3))
    res = robust.create_attack("pgd", steps=4)(defended, digits.x[:8], torch.full((8,), 3), eps=0.1)
    assert res.forward_passes == 4


def test_attributes_come_from_the_inner_model(digits: Any) -> None:
    inner = robust.Classifier(small_net(), bounds=(-1.0, 2.0), device="cpu")
    inner.name = "tiny"
    defense = robust.create_defense("spatial-smoothing", window=2)
    defended = defense.wrap(inner)
    assert isinstance(defended, DefendedClassifier) and isinstance(defended, robust.Classifier)
    assert defended.bounds == inner.bounds == (-1.0, 2.0)
    assert defended.device == inner.device
    assert defended.name == "tiny+spatial-smoothing"
    assert defended.defenses == [defense] and defended.defense is defense and defended.inner is inner
    assert defended.num_classes is None and inner.num_classes is None
    defended(digits.x[:2])
    assert defended.num_classes == inner.num_classes == 10
    defended.num_classes = 7
    assert inner.num_classes == 7
    assert (defended.precision, defended.compiled) == (inner.precision, inner.compiled) == ("fp32", False)


def test_accelerate_changes_the_inner_model(digits: Any) -> None:
    inner = robust.Classifier(small_net(), device="cpu")
    defended = robust.create_defense("jpeg").wrap(inner)
    assert defended.accelerate("bf16") is defended
    assert inner.precision == defended.precision == "bf16"
    assert not defended.exact_gradient_pass and not inner.exact_gradient_pass
    with pytest.raises(robust.RobustError, match="precision"):
        defended.accelerate("fp8")
    defended.accelerate("fp32")
    assert inner.precision == defended.precision == "fp32" and defended.exact_gradient_pass
    inner.accelerate("bf16")
    assert defended.precision == "bf16"


def test_accelerate_compiles_the_inner_model() -> None:
    inner = robust.Classifier(small_net(), device="cpu")
    defended = robust.create_defense("jpeg").wrap(inner)
    defended.accelerate(compile=True)
    assert inner.compiled and defended.compiled
    defended.accelerate()
    assert not inner.compiled and not defended.compiled


def test_a_chain_of_two_defenses_unwraps(digits: Any) -> None:
    inner = robust.Classifier(small_net(), device="cpu")
    inner.name = "tiny"
    jpeg, smoothing = robust.create_defense("jpeg", quality=60), robust.create_defense("spatial-smoothing", window=2)
    chained = smoothing.wrap(jpeg.wrap(inner))
    assert chained.name == "tiny+jpeg+spatial-smoothing"
    assert chained.defenses == [jpeg, smoothing]
    assert undefended(chained) is inner and undefended(inner) is inner
    assert isinstance(chained.inner, DefendedClassifier) and chained.inner.inner is inner
    chained.accelerate("bf16")
    assert inner.precision == "bf16" and chained.inner.precision == "bf16"
    x = digits.x[:4]  # the input meets the outermost defense first, the innermost last
    expected = inner(jpeg.transform(smoothing.transform(x).clamp(0, 1)).clamp(0, 1))
    assert torch.allclose(chained(x), expected, atol=1e-6)


def test_training_defense_is_not_a_preprocessing_defense(digits: Any) -> None:
    training = robust.create_defense("adversarial-training")
    assert isinstance(training, TrainingDefense) and not isinstance(training, PreprocessingDefense)
    assert training.kind == "training"
    with pytest.raises(robust.RobustError, match="produces a model"):
        training.wrap(robust.Classifier(small_net(), device="cpu"))


@pytest.mark.parametrize("name", ["jpeg", "spatial-smoothing", "feature-squeezing"])
def test_preprocessing_defenses_wrap(name: str) -> None:
    defense = robust.create_defense(name)
    assert isinstance(defense, PreprocessingDefense) and not isinstance(defense, TrainingDefense)
    assert defense.kind == "preprocessing"
    inner = robust.Classifier(small_net(), device="cpu")
    assert isinstance(defense.wrap(inner), DefendedClassifier)


def test_command_line_refuses_a_training_defense(tmp_path: Any) -> None:
    outcome = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--n", "4", "--defense", "adversarial-training",
                                        "--out", str(tmp_path / "o")])
    assert outcome.exit_code == 2, outcome.output
    assert "produces a model" in outcome.output
