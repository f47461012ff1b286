"""Is a partition's row count an anomaly against the partitions before it?

The baseline is the median of the trailing partitions that hold rows (a median, so one odd day in
the history does not move it); too little history is not an anomaly, only unknown.
"""

from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class VolumeVerdict:
    """The count, its baseline, how far it strays (share of the baseline), and the outcome:
    ``ok``, ``warn``, ``error``, or ``unknown`` (not enough history)."""

    rows: int
    baseline: float | None
    deviation: float | None
    history: int
    outcome: str


def judge_volume(
    rows: int,
    trailing: list[int],
    min_history: int,
    warn_deviation: float,
    error_deviation: float,
) -> VolumeVerdict:
    """Compare ``rows`` with the median of the non-empty ``trailing`` counts."""
    history = [count for count in trailing if count > 0]
    if len(history) < min_history:
        return VolumeVerdict(rows, None, None, len(history), "unknown")
    baseline = float(median(history))
    deviation = abs(rows - baseline) / baseline
    outcome = (
        "error" if deviation > error_deviation else "warn" if deviation > warn_deviation else "ok"
    )
    return VolumeVerdict(rows, baseline, round(deviation, 6), len(history), outcome)
