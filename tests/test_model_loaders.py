"""The models people evaluate: timm families, a Hugging Face classifier, normalization options, kept Classifiers.

Every model is built with random weights (nothing is downloaded), saved to a file and run
through ``robust evaluate`` as a user would. The labels are the model's own predictions, so
every point starts correctly classified and the checks run on all of them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import robust
from robust.cli import main
from robust.model import Preprocessing
from robust.zoo.normalization import PRESETS
from tests.fixtures.cifar_nets import CIFAR10

IMAGENET = PRESETS["imagenet"]
NETS = "tests.fixtures.cifar_nets"
ATTACKS = ("fgsm", "pgd", "deepfool")
# The checks judge 8 points of a random network. With seeds 0, 1 and 3, one family each had one point (12.5%)
# on which PGD-20 from a random start did worse than FGSM, or that survived eps 1: the network's quirk.
SEED = 2
CHECKS = {"iterative-vs-single-step", "more-steps", "eps-sweep", "gradients", "randomized-forward", "probabilities"}

# One small variant per family, at 32x32; transformers get a matching image, patch and window size.
FAMILIES = {
    "resnet": "resnet10t",
    "convnext": "convnext_atto",
    "vit": "vit_tiny_patch16_224:img_size=32,patch_size=8",
    "deit": "deit_tiny_patch16_224:img_size=32,patch_size=8",
    "efficientnet": "efficientnet_b0",
    "mobilenetv3": "mobilenetv3_small_050",
    "regnet": "regnetx_002",
    "swin": "swin_tiny_patch4_window7_224:img_size=32,window_size=4",
    "levit": "levit_128s:img_size=32",
    "mobilevit": "mobilevit_xxs",
    "ghostnet": "ghostnet_050",
}


@pytest.fixture
def timm() -> Any:
    return pytest.importorskip("timm")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Batches of 8 small images gain nothing from a second thread, and on a busy 2-core machine
    OpenMP's waiting threads make them up to ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def evaluate(tmp: Path, model: str, data: Path, *extra: str) -> dict[str, Any]:
    """``robust evaluate`` with FGSM, PGD and DeepFool at eps 8/255 on the CPU; the result.json."""
    out = tmp / "out"
    attacks = [arg for name in ATTACKS for arg in ("--attack", name)]
    code, output = run("evaluate", "--model", model, "--dataset", str(data), *attacks, "--n", "8", "--eps", "8/255",
                       "--device", "cpu", "--out", str(out), "--force", *extra)
    assert code == 0, output
    result: dict[str, Any] = json.loads((out / "result.json").read_text())
    return result


def images(n: int = 8, seed: int = 0) -> torch.Tensor:
    """Smooth random RGB images in [0, 1], (n, 3, 32, 32)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=gen)
    return nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False).clamp(0, 1)


def labelled(path: Path, model: robust.Classifier, x: torch.Tensor) -> Path:
    """An .npz of ``x`` labelled with ``model``'s predictions."""
    np.savez(path, x=x.numpy(), y=model.predict(x).cpu().numpy())
    return path


def normalized(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` normalized as the timm model ``net`` expects (its pretrained_cfg's mean and std)."""
    mean, std = (torch.tensor(net.pretrained_cfg[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std


def settled(net: nn.Module) -> nn.Module:
    """``net`` with batch-norm statistics measured on a few random images (as training leaves them), in eval mode."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        net.train()(normalized(net, images(16, seed=1)))
    return net.eval()


def tempered(net: nn.Module, spread: float = 2.0) -> nn.Module:
    """``net`` with its classifier shifted and scaled: on random images each logit has mean 0, and all have
    standard deviation ``spread``.

    Random initializations are degenerate classifiers: a random ResNet calls every image the
    same class, and EfficientNet or MobileNetV3 give logits in the thousands, so the softmax
    saturates and the cross-entropy gradient is exactly zero. The checks rightly fail on such
    models; trained ones do not look like that.
    """
    heads = net.pretrained_cfg["classifier"]
    layers = [net.get_submodule(name) for name in ((heads,) if isinstance(heads, str) else heads)]
    with torch.no_grad():
        logits = net(normalized(net, images(32, seed=2)))
        scale = spread / float((logits - logits.mean(0)).std())
        for layer in layers:  # several heads (LeViT's distillation head) are averaged
            layer.bias.sub_(logits.mean(0)).mul_(scale)
            layer.weight.mul_(scale)
    return net


def assert_checked(result: dict[str, Any]) -> None:
    assert [a["name"] for a in result["attacks"]] == list(ATTACKS)
    statuses = {c["id"]: c["status"] for c in result["checks"]}
    assert CHECKS <= set(statuses), statuses
    failed = [c for c in result["checks"] if c["status"] == "fail"]
    assert not failed, failed


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_timm_family_through_the_cli(family: str, timm: Any, tmp_path: Path) -> None:
    spec = FAMILIES[family]
    arch, _, text = spec.partition(":")
    kwargs = {k: int(v) for k, v in (item.split("=") for item in text.split(",") if item)}
    torch.manual_seed(SEED)
    net = tempered(settled(timm.create_model(arch, pretrained=False, num_classes=10, **kwargs)))
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    model = robust.load_model(f"timm:{spec}", weights=str(tmp_path / "weights.pt"), device="cpu")
    assert model.mean is not None and model.std is not None
    assert model.mean.flatten().tolist() == pytest.approx(net.pretrained_cfg["mean"])
    assert model.std.flatten().tolist() == pytest.approx(net.pretrained_cfg["std"])
    x = images()
    with torch.no_grad():
        expected = net(((x - model.mean) / model.std))
    assert torch.allclose(model(x), expected, atol=1e-5)
    result = evaluate(tmp_path, f"timm:{spec}", labelled(tmp_path / "data.npz", model, x),
                      "--weights", str(tmp_path / "weights.pt"))
    assert result["clean_accuracy"] == 1.0
    assert_checked(result)


def test_timm_settings_and_checkpoints(timm: Any, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    checkpoint = {"epoch": 3, "arch": "resnet10t", "args": argparse.Namespace(lr=0.1),
                  "state_dict": {f"module.{k}": torch.zeros_like(v) for k, v in net.state_dict().items()},
                  "state_dict_ema": net.state_dict()}
    torch.save(checkpoint, tmp_path / "ckpt.pth.tar")
    model = robust.load_model("timm:resnet10t", weights=str(tmp_path / "ckpt.pth.tar"), device="cpu")
    x = torch.rand(2, 3, 32, 32)
    assert model.mean is not None and model.std is not None
    with torch.no_grad():  # the EMA weights, not the zeros
        assert torch.allclose(model(x), net.eval()((x - model.mean) / model.std), atol=1e-5)
    cfg = net.pretrained_cfg
    assert model.preprocessing == Preprocessing(resize=int(cfg["input_size"][-1] / cfg["crop_pct"]),
                                                crop=cfg["input_size"][-1])
    vit = robust.load_model("timm:vit_tiny_patch16_224:img_size=32,patch_size=8,num_classes=3", device="cpu")
    assert vit.preprocessing == Preprocessing(resize=32, crop=32) and vit(x).shape == (2, 3)
    cifar = robust.load_model("timm:resnet10t", normalization="cifar10", bounds=(0, 2), device="cpu")
    assert cifar.mean is not None and cifar.mean.flatten().tolist() == pytest.approx(CIFAR10[0])
    assert cifar.bounds == (0.0, 2.0) and cifar.preprocessing == model.preprocessing


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ViT image classifier (10 labels, 32x32) and its image processor, saved as save_pretrained does."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=10,
                                    id2label={i: f"class{i}" for i in range(10)},
                                    label2id={f"class{i}": i for i in range(10)})
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3],
                                   image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder


def test_hugging_face_classifier_through_the_cli(hf_folder: Path, tmp_path: Path) -> None:
    model = robust.load_model(f"hf:{hf_folder}", device="cpu")
    assert model.mean is not None and model.std is not None
    assert model.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert model.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.3])
    assert model.preprocessing == Preprocessing(resize=32, crop=32) and model.bounds == (0.0, 1.0)
    assert not model.module.training and model.module.device == model.device
    result = evaluate(tmp_path, f"hf:{hf_folder}", labelled(tmp_path / "data.npz", model, images()))
    assert result["clean_accuracy"] == 1.0
    assert_checked(result)


def test_processor_settings_fold_rescaling_and_crop_pct() -> None:
    transformers = pytest.importorskip("transformers")
    from robust.zoo.hf_models import processor_settings

    convnext = processor_settings(transformers.ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.875))
    assert convnext.preprocessing == Preprocessing(resize=256, crop=224)  # 224 / 0.875
    raw = processor_settings(transformers.ViTImageProcessor(do_rescale=False, image_mean=[127.5] * 3,
                                                            image_std=[63.75] * 3))  # expects pixels in 0..255
    assert raw.mean == pytest.approx((0.5,) * 3) and raw.std == pytest.approx((0.25,) * 3)
    centered = processor_settings(transformers.ViTImageProcessor(size={"height": 256, "width": 256},
                                                                 do_center_crop=True, crop_size={"height": 224, "width": 224}))
    assert centered.preprocessing == Preprocessing(resize=256, crop=224)


def samples(tmp: Path, model: str, data: Path, *extra: str) -> list[dict[str, Any]]:
    out = evaluate(tmp / model.replace(":", "_"), model, data, "--no-checks", *extra)
    return list(out["samples"])


def test_command_line_normalization_equals_a_python_classifier(tmp_path: Path) -> None:
    data = labelled(tmp_path / "data.npz", robust.load_model(f"{NETS}:normalized", device="cpu"), images())
    python = samples(tmp_path, f"{NETS}:normalized", data)
    mean, std = (",".join(str(v) for v in values) for values in CIFAR10)
    assert samples(tmp_path, f"{NETS}:net", data, "--mean", mean, "--std", std) == python
    assert samples(tmp_path, f"{NETS}:net", data, "--normalization", "cifar10") == python


def test_a_factory_returning_a_classifier_is_kept(tmp_path: Path) -> None:
    model = robust.load_model(f"{NETS}:in_255", device="cpu")
    assert model.bounds == (0.0, 255.0)
    data = labelled(tmp_path / "data.npz", model, images() * 255)
    result = evaluate(tmp_path, f"{NETS}:in_255", data)
    sweep = next(c for c in result["checks"] if c["id"] == "eps-sweep")
    assert "eps 255:" in sweep["message"]  # the largest budget is the whole range (0, 255)
    code, output = run("evaluate", "--model", f"{NETS}:in_255", "--bounds", "0,255", "--dataset", str(data),
                       "--out", str(tmp_path / "again"))
    assert code == 2 and "already a robust.Classifier" in output and "bounds" in output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output


@pytest.mark.parametrize("attr", ["Pair", "Outputs"])
def test_tuple_and_mapping_outputs(attr: str, tmp_path: Path) -> None:
    data = labelled(tmp_path / "data.npz", robust.load_model(f"{NETS}:net", device="cpu"), images())
    assert samples(tmp_path, f"{NETS}:{attr}", data) == samples(tmp_path, f"{NETS}:net", data)




def test_hf_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(robust.RobustError, match="no config.json"):
        robust.load_model(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(robust.RobustError, match="does not hold an image classifier"):
        robust.load_model(f"hf:{tmp_path}")


def test_torchvision_defaults_and_prefix(tmp_path: Path) -> None:
    import torchvision

    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=5).state_dict(), tmp_path / "r.pt")
    for name in ("resnet18", "torchvision:resnet18"):
        model = robust.load_model(name, weights=str(tmp_path / "r.pt"), device="cpu")
        assert model.preprocessing == Preprocessing(resize=256, crop=224)
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 5)
        assert model.mean is not None and model.mean.flatten().tolist() == pytest.approx(IMAGENET[0])
    bare = robust.load_model("resnet18", weights=str(tmp_path / "r.pt"), normalization="none", device="cpu")
    assert bare.mean is None and bare.std is None


def test_list_models_names_the_loaders() -> None:
    code, output = run("list", "models")
    assert code == 0
    for loader in ("torchvision:ARCH", "timm:NAME", "hf:FOLDER", "package.module:attr", "TorchScript"):
        assert loader in output
    lines = output.splitlines()
    assert lines.index(next(line for line in lines if line.startswith("resnet "))) < lines.index(
        next(line for line in lines if line.startswith("timm:")))


@pytest.mark.parametrize(("package", "spec", "extra"), [("timm", "timm:resnet18", "robust[timm]"),
                                                        ("transformers", "hf:.", "robust[hf]")])
def test_missing_optional_package_says_what_to_install(package: str, spec: str, extra: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(robust.RobustError, match=rf"{package} is not installed: pip install '{re.escape(extra)}'"):
        robust.load_model(spec)
