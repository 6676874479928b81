"""Every guard of the runtime, as one frozen value.

A *lever* is a boolean guard that some failure mode turns off to show why it exists:
each FM's baseline is GUARDED with exactly its one lever off (`GUARDED.without(lever)`).
Tunables (lease length, retry budget, backoff) are not levers; they size the guards.
The catalog test checks that every lever is the lever of at least one FM: no dead guards.
"""

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Policies:
    # Levers.
    commit_boundary: bool = True
    """The effect is written in the same transaction as the commit of its execution, keyed
    by job, so a retry's commit finds the effect already there and absorbs it (FM_001)."""

    # Tunables.
    lease_s: float = 30.0
    attempts_max: int = 3
    retry_delay_s_base: float = 1.0
    retry_delay_s_max: float = 60.0

    def __post_init__(self) -> None:
        if self.lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {self.lease_s}")
        if self.attempts_max < 1:
            raise ValueError(f"attempts_max must be at least 1, got {self.attempts_max}")
        if not 0 <= self.retry_delay_s_base <= self.retry_delay_s_max:
            raise ValueError("need 0 <= retry_delay_s_base <= retry_delay_s_max")

    def without(self, lever: str) -> "Policies":
        """These policies with one lever turned off: an FM's baseline."""
        if lever not in LEVERS:
            raise ValueError(f"unknown lever {lever!r}; levers are {', '.join(LEVERS)}")
        return replace(self, **{lever: False})

    def levers_off(self) -> tuple[str, ...]:
        return tuple(lever for lever in LEVERS if not getattr(self, lever))


LEVERS: tuple[str, ...] = tuple(f.name for f in fields(Policies) if f.type in (bool, "bool"))

GUARDED = Policies()
"""Every guard on. The default everywhere."""
