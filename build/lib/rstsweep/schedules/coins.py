"""The RST coins: seeded uniforms U_t, shared by every schedule (common random numbers).

X_t = U_t < p(t/T). The uniforms come from numpy's PCG64 seeded with `SeedSequence([seed, SALT])`:
deterministic across machines and numpy versions (numpy's stream-compatibility policy for
PCG64/SeedSequence), independent of torch's RNG and of any other use of the same integer seed.
`Generator.random` fills values one by one, so the first n uniforms do not depend on T (a resumed
or longer run sees the same coins for the steps it shares with a shorter one).
"""

from __future__ import annotations

import numpy as np

from rstsweep.schedules.errors import ScheduleError

# Fixed salt ("RSTCOIN" in ASCII); changing it changes every coin of every stored experiment.
SALT = 0x525354434F494E


def uniforms(T: int, seed: int) -> np.ndarray:
    """U_0..U_{T-1} ~ Uniform[0, 1) as float64, a pure function of (seed, t)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 0:
        raise ScheduleError(f"T: {T!r} must be an integer >= 0")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScheduleError(f"seed: {seed!r} must be an integer >= 0")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), SALT])))
    return rng.random(int(T))
