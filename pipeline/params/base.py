"""What every params section is: frozen, and unknown keys are errors (a typo must not become a default)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
