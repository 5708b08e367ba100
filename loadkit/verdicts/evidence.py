"""How much evidence a finding needs: the minimum number of samples, stated once.

A finding of the report (CPU-bound server, CPU hot spot, canary gap, pool saturation, pool
visibility) rests on samples of a monitor taken during the run. Below ``MIN_SAMPLES`` the report
says "too few samples" instead of making the claim.
"""

from __future__ import annotations

MIN_SAMPLES = 5


def enough(samples: object) -> bool:
    """Whether a sample count is a number at or above MIN_SAMPLES."""
    return (
        isinstance(samples, int | float)
        and not isinstance(samples, bool)
        and samples >= MIN_SAMPLES
    )


def too_few(what: str, samples: object) -> str:
    """The sentence that replaces a claim made from too few samples."""
    return (
        f"too few samples to judge {what} ({samples or 0} samples, at least {MIN_SAMPLES} needed)"
    )
