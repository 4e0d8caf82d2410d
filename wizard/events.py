"""StepEvent: the one thing every front end renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["pending", "running", "ok", "warn", "failed", "skipped"]


@dataclass(frozen=True)
class StepEvent:
    step: str
    status: Status
    message: str
    detail: str = ""
    elapsed: float = 0.0
    # "change" for one change applied or planned, "check" for a verify result, "" for the step itself.
    kind: str = ""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["elapsed"] = round(self.elapsed, 3)
        return data
