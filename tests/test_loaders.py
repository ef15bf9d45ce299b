"""load_model(): zoo, import specs, TorchScript, torchvision architectures, refused pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

import robust
from robust.zoo import ZOO, zoo_cards


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_models_reach_stated_accuracy(name: str) -> None:
    data = robust.load_dataset("mnist")
    model = robust.load_model(name)
    accuracy = float((model.predict(data.x).cpu() == data.y).float().mean())
    assert accuracy >= (0.97 if name.endswith("-at") else 0.985)
    assert accuracy == pytest.approx(zoo_cards()[name]["clean_accuracy"], abs=1e-3)


def test_import_spec_instance_and_factory() -> None:
    assert isinstance(robust.load_model("tests.fixtures.nets:INSTANCE").module, nn.Sequential)
    assert robust.load_model("tests.fixtures.nets:make_net").name == "tests.fixtures.nets:make_net"


def test_import_spec_with_weights(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    model = robust.load_model("tests.fixtures.nets:make_net", weights=str(tmp_path / "w.pt"))
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model(x), net(x))


def test_torchscript_file(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    model = robust.load_model(str(tmp_path / "net.ts"))
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(model(x), net(x), atol=1e-6)


def test_torchvision_architecture_with_weights(tmp_path: Path) -> None:
    import torchvision

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=7)
    torch.save(net.state_dict(), tmp_path / "r18.pt")
    model = robust.load_model("resnet18", weights=str(tmp_path / "r18.pt"))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 7)


def test_pickled_payload_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this ran",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"weight": Payload()}, f)
    with pytest.raises(robust.RobustError, match="pickled Python objects"):
        robust.load_model("resnet18", weights=str(tmp_path / "evil.pt"))


def test_state_dict_as_model_file_is_explained(tmp_path: Path) -> None:
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(robust.RobustError, match="--weights"):
        robust.load_model(str(tmp_path / "sd.pt"))


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(robust.RobustError, match="do not fit"):
        robust.load_model("cnn", weights=str(tmp_path / "sd.pt"))
