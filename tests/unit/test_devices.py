"""aecluster/devices.py: the default torch device, and a user's choice checked before any work."""

import pytest
import torch

from aecluster.devices import default_device, resolve_device
from aecluster.errors import UserInputError


@pytest.fixture
def two_cuda_devices(monkeypatch):
    """A machine that looks like it has a CUDA build of torch and two CUDA devices."""
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_the_default_is_cuda_where_there_is_one_else_cpu(monkeypatch):
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == default_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == resolve_device(None) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"


@pytest.mark.parametrize("name", ["cpu", "cpu:0", torch.device("cpu")])
def test_the_cpu_is_given_back_as_text(name):
    assert resolve_device(name) == str(name)


@pytest.mark.parametrize("name, message", [
    ("gpu", "unknown device 'gpu'; expected one of cpu, cuda, mps"),
    ("cuda:x", "unknown device 'cuda:x'"),
    ("meta", "device 'meta' cannot run aecluster; expected one of cpu, cuda, mps"),
    ("cpu:1", "device 'cpu:1' does not exist: there is one cpu device (cpu or cpu:0)"),
])
def test_names_that_are_no_device_here_are_refused_in_one_line(name, message):
    with pytest.raises(UserInputError) as raised:
        resolve_device(name)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_cuda_needs_a_cuda_build_of_torch(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(UserInputError, match=r"device 'cuda' is not available: this torch build .* has no CUDA"):
        resolve_device("cuda")


def test_cuda_needs_a_cuda_device(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserInputError, match="this machine has no CUDA device; use cpu"):
        resolve_device("cuda:0")


def test_a_cuda_index_must_be_one_of_the_machines_devices(two_cuda_devices):
    assert [resolve_device(name) for name in ("cuda", "cuda:0", "cuda:1")] == ["cuda", "cuda:0", "cuda:1"]
    with pytest.raises(UserInputError, match=r"'cuda:2' does not exist: this machine has 2 CUDA device\(s\), "
                                             r"cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_mps_needs_apples_gpu(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserInputError, match="device 'mps' is not available on this machine; use cpu"):
        resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == "mps"
