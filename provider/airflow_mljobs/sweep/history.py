"""The trial history samplers and policies read: immutable records, in trial order."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrialRecord:
    index: int
    params: dict
    status: str  # Running, Completed, Failed, Canceled
    values: tuple[float, ...] = field(default_factory=tuple)  # the primary metric, one value per interval

    @property
    def final(self) -> float | None:
        return self.values[-1] if self.values else None
