"""Hypothesis settings profiles for tests/test_properties.py.

Registered at import (test_properties imports this module).  pytest's
``--hypothesis-profile`` option is applied before test modules are
imported, so to pick a profile on the command line load this module as a
plugin too::

    python -m pytest -p tests._hyp --hypothesis-profile=dev \\
        tests/test_properties.py

or set ``AIOKAFKA_C_HYPOTHESIS_PROFILE=dev`` (no plugin needed).

Profiles:

- ``ci`` (the default): fixed examples (``derandomize``), no database,
  bounded example counts; the whole file takes well under a minute on two
  cores with a normal build.
- ``asan``: like ``ci`` with fewer examples, chosen automatically when
  ``libasan`` is in ``LD_PRELOAD`` (AddressSanitizer is 3-5x slower).
- ``dev``: random, thousands of examples, an example database under the
  system temp dir (failures are replayed first on the next run).
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE_ENV = "AIOKAFKA_C_HYPOTHESIS_PROFILE"
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")

_common = dict(
    deadline=None,  # timing noise (threads, forks, ASan)
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
# Bounded runs do not shrink: a failing example that hangs costs its whole
# time bound on every shrink step.  Every distinct failure is reported
# (hypothesis tells them apart by exception type and line; the runner
# gives each failure site in an example's process its own type).  The dev
# profile shrinks.
_fast_phases = (Phase.explicit, Phase.reuse, Phase.generate)

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    phases=_fast_phases,
    **_common,
)
settings.register_profile(
    "asan",
    max_examples=25,
    derandomize=True,
    database=None,
    phases=_fast_phases,
    **_common,
)
settings.register_profile(
    "dev",
    max_examples=3000,
    database=DirectoryBasedExampleDatabase(
        os.path.join(tempfile.gettempdir(), "aiokafka_c-hypothesis-db")
    ),
    **_common,
)


def profile_name() -> str:
    """The profile to run: --hypothesis-profile (with -p tests._hyp), else
    $AIOKAFKA_C_HYPOTHESIS_PROFILE, else "asan" under AddressSanitizer,
    else "ci"."""
    current = settings.get_current_profile_name()
    if current != "default":
        return current
    env = os.environ.get(PROFILE_ENV)
    if env:
        return env
    return "asan" if UNDER_ASAN else "ci"
