"""Atomic writes, truncated files and checkpoints loaded into the wrong network."""
from __future__ import annotations

import pytest
import torch

from cv_helpers.checkpoint import load_checkpoint, load_state_checked, model_from_checkpoint, save_checkpoint
from cv_helpers.errors import CheckpointError, WorkbookError
from cv_helpers.files import write_atomically
from cv_helpers.models import ConvNet, ConvNetBN


def _state(model) -> dict:
    return {"model_name": "convnet", "model_kwargs": {}, "class_names": None, "epoch": 1,
            "model_state": model.state_dict()}


def test_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"previous")

    def broken_writer(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WorkbookError, match="cannot write .*file.bin: No space left on device.*previous file"):
        write_atomically(path, broken_writer)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_interrupted_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"previous")

    def interrupted(handle):
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, interrupted)
    assert path.read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(WorkbookError, match="cannot write .*choose a writable folder"):
        write_atomically(blocker / "sub" / "file.bin", lambda handle: handle.write(b"x"))


def test_checkpoint_round_trip_rebuilds_the_network(tmp_path):
    model = ConvNet()
    save_checkpoint(tmp_path / "c.pt", _state(model))
    rebuilt, state = model_from_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()))


def test_truncated_checkpoint_is_detected(tmp_path):
    save_checkpoint(tmp_path / "c.pt", _state(ConvNet()))
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated or corrupt \(RuntimeError\); delete it and train again"):
        load_checkpoint(tmp_path / "c.pt")


def test_foreign_file_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a cv_helpers checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; run notebook Q1"):
        load_checkpoint(tmp_path / "none.pt", hint="run notebook Q1")


def test_wrong_architecture_names_the_mismatched_layers():
    with pytest.raises(CheckpointError) as info:
        load_state_checked(ConvNetBN(), ConvNet().state_dict(), "lenet.pt")
    message = str(info.value)
    assert "lenet.pt does not fit ConvNetBN" in message
    assert "bn1.weight missing" in message and "fc3.weight unexpected" in message
    assert "conv1.weight (6, 3, 5, 5) vs (64, 3, 3, 3)" in message
