"""Read a TOML data file into a pydantic model; every error names the file, key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from gateway.config import NonNeg, _describe
from gateway.errors import ConfigError

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
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, data, path)) from None
