"""Checkpoints that are written atomically, carry everything needed to resume, and fail loudly when wrong.

A checkpoint is a dict: format, model_name, model_kwargs, epoch (last completed, 1-based), model_state,
optimizer_state, history (per-epoch lists, see train.History) and config (the run's TrainConfig as a dict).
Only training code and the readers of trained weights import this module.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError
from .files import write_atomically
from .models import build_model

FORMAT = "cv_helpers.checkpoint/1"


def save_checkpoint(path: Path | str, state: dict) -> None:
    """Writes a checkpoint dict atomically (see module docstring for its keys)."""
    write_atomically(path, lambda handle: torch.save({"format": FORMAT, **state}, handle))


def load_checkpoint(path: Path | str, hint: str = "") -> dict:
    """Returns a checkpoint dict; missing, truncated or foreign files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist{'; ' + hint if hint else ''}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a damaged zip/pickle
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}); "
                              "delete it and train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cv_helpers checkpoint; train one with "
                              "`python -m cv_helpers.workbench train`")
    return state


def load_state_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Loads weights, naming every mismatched layer instead of torch's long error."""
    own = model.state_dict()
    problems = [f"{k} missing" for k in own if k not in state_dict]
    problems += [f"{k} unexpected" for k in state_dict if k not in own]
    problems += [f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                 if k in state_dict and state_dict[k].shape != v.shape]
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {'; '.join(problems)}; "
                              "build the network the checkpoint was trained with (see its model_name)")
    model.load_state_dict(state_dict)


def model_from_checkpoint(path: Path | str, hint: str = "") -> tuple[nn.Module, dict]:
    """Returns (network rebuilt from the checkpoint's model name and arguments, with its weights; checkpoint)."""
    state = load_checkpoint(path, hint)
    model = build_model(state["model_name"], **state["model_kwargs"])
    load_state_checked(model, state["model_state"], str(path))
    return model, state
