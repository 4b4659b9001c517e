"""Named moments at which the failure drills kill a sweep's driver (tests/test_sweep_drills.py,
evaluation/drills.py)."""

import os
import signal

KILL_POINTS = ("first_result", "mid_trial", "last_report", "selection", "export", "confirm")


def kill_at(point: str) -> None:
    """Test infrastructure kept in the product: SIGKILLs this driver when STYLEDISCOVER_KILL_AT names `point`
    (one of KILL_POINTS), so the failure drills (tests/test_sweep_drills.py, evaluation/drills.py) can kill a
    sweep at a named moment instead of after a sleep. Does nothing when the variable is unset."""
    if os.environ.get("STYLEDISCOVER_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
