"""Saving and loading a run's fitted model (preprocessing, model, segment ids) as one file.

Its own module so that scoring reads a saved model without importing the clustering step.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib

from .errors import UserError


def save_model(path: Path, artefact: dict) -> None:
    """Write the fitted preprocessing + model atomically (a killed run leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    joblib.dump(artefact, temporary)
    os.replace(temporary, path)


def load_model(path: Path) -> dict:
    """Reload a saved run: {'run_id', 'contract', 'preprocessor', 'model', 'segment_ids', …}."""
    if not path.exists():
        raise UserError(f"no saved model at {path}: run `make all` first.")
    return joblib.load(path)
