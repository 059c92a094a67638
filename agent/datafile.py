"""Read a TOML data file into a pydantic model; every error names the file, key and value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from gateway.config import NonNeg
from gateway.tomlmodel import load_toml_model

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A data-file section: unknown keys are typos, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered(v: tuple[float, float]) -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f"[{v[0]}, {v[1]}]: expected [low, high] with low <= high")
    return v


# [low, high]: the simulator draws uniformly between the two.
Range = Annotated[tuple[NonNeg, NonNeg], AfterValidator(_ordered)]


def load_model(path: Path, model: type[M]) -> M:
    """Parse and validate one TOML file; raises ConfigError naming file, key and value."""
    return load_toml_model(path, model)
