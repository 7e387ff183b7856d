"""How OpenMP threads wait for work, chosen from how busy the CPUs are when a command starts.

PyTorch's CPU kernels run on OpenMP threads that, between two operations, either spin (the
libgomp default, ``OMP_WAIT_POLICY`` unset) or sleep (``PASSIVE``). Measured here on 2 cores
(one training step of the 7 M-parameter ``las_small`` of 2026-11-25, 14 utterances of
1.5-4.5 s, 2 threads):

============================  ===========  ====================================
                              free cores   another process busy on one core
============================  ===========  ====================================
spinning (libgomp default)    0.65 s       2.0 s
sleeping (``PASSIVE``)        1.35 s       1.2 s
============================  ===========  ====================================

Spinning halves the step on free cores, where every small operation of the speller's loop would
otherwise wait for a thread to wake; on a shared CPU the spinning thread steals the core that
the other thread needs. So the commands that compute (``asr train``, ``evaluate``,
``transcribe``) sample ``/proc/stat`` for a moment before torch loads and choose sleeping
threads only when other processes already keep CPUs busy: busy in each of three short windows,
so that a burst (a process exiting, the recipe's previous stage winding down) does not make a
whole training run sleep. A fresh-clone ``make demo`` on 2026-12-06 chose sleeping threads
from one 0.2 s window as training started (the cores were free again by the end of its first
epoch) and trained at 5.4 minutes an epoch, against 3.2 for the same recipe with spinning
threads. The policy is read once, when torch starts its threads, so it cannot follow load that
appears later; a policy set by the user in the environment is always kept.

Import nothing heavy here: this runs before torch is imported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping

# Set beside OMP_WAIT_POLICY when choose_omp_wait_policy chose PASSIVE (not the user).
CHOSEN_MARKER = "ASR_CHOSE_OMP_PASSIVE"

# Other processes keeping at least this many cores busy make threads sleep (see the table above:
# one busy core already made spinning 1.7x slower than sleeping).
BUSY_CORES_THRESHOLD = 0.5


def read_cpu_times(path: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) jiffies summed over all CPUs since boot, or None where unavailable.

    Busy is user, nice, system, irq and softirq time; steal (the hypervisor running another
    machine) counts in the total only: no process here competes for the cores then."""
    try:
        with open(path) as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    times = [int(value) for value in fields[1:]]
    idle = times[3] + (times[4] if len(times) > 4 else 0)  # idle + iowait
    steal = times[7] if len(times) > 7 else 0
    return sum(times[:8]) - idle - steal, sum(times[:8])  # guest time is counted in user


def busy_cores(
    seconds: float = 0.15,
    read: Callable[[], tuple[int, int] | None] = read_cpu_times,
    sleep: Callable[[float], None] = time.sleep,
    num_cpus: int | None = None,
    windows: int = 3,
    stop_below: float = BUSY_CORES_THRESHOLD,
) -> float | None:
    """How many cores stayed busy: the least average over ``windows`` consecutive windows of
    ``seconds`` each; None if unknown.

    Load that keeps cores busy shows in every window, a burst only in some. The first window
    below ``stop_below`` ends the measurement (the least cannot be higher), so a free machine
    costs one window. Call it while this process is idle: it counts every process, this one
    included.
    """
    num_cpus = num_cpus or os.cpu_count() or 1
    least = None
    before = read()
    for _ in range(windows):
        sleep(seconds)
        after = read()
        if before is None or after is None or after[1] <= before[1]:
            return None
        load = num_cpus * (after[0] - before[0]) / (after[1] - before[1])
        least = load if least is None else min(least, load)
        if least < stop_below:
            break
        before = after
    return least


def choose_omp_wait_policy(
    environ: MutableMapping[str, str] = os.environ,
    measure: Callable[[], float | None] = busy_cores,
    threshold: float = BUSY_CORES_THRESHOLD,
) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` when other processes keep CPUs busy.

    Returns a line saying what was chosen and why, or None when nothing was changed (the user
    set a policy, the CPUs are free, or their load cannot be read).
    """
    if "OMP_WAIT_POLICY" in environ:
        return None
    load = measure()
    if load is None or load < threshold:
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    environ[CHOSEN_MARKER] = "1"  # so a long run can say when the load that chose it is gone
    return (
        f"other processes keep {load:.1f} CPU cores busy: idle OpenMP threads will sleep "
        "instead of spinning (OMP_WAIT_POLICY=PASSIVE; set OMP_WAIT_POLICY yourself to choose)"
    )


def passive_no_longer_needed(
    environ: MutableMapping[str, str] = os.environ,
    measure: Callable[[], float | None] = busy_cores,
    threshold: float = BUSY_CORES_THRESHOLD,
) -> str | None:
    """A line advising a restart when this process's sleeping threads were chosen for a load
    that has since gone; None otherwise (the user chose the policy, or the CPUs are still busy).

    Call it while this process is idle (between epochs): OpenMP reads the policy only when it
    starts, so a run that began on busy CPUs keeps sleeping threads, about 2x slower on free
    cores (measured 2026-12-03: 8.6 against 4.2 minutes a demo epoch).
    """
    if environ.get(CHOSEN_MARKER) != "1" or environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        return None
    load = measure()
    if load is None or load >= threshold:
        return None
    return (
        f"the CPUs are free now ({load:.1f} cores busy) but this run's OpenMP threads sleep, as "
        "chosen at start for a busy machine: stop it (SIGTERM saves a checkpoint) and rerun the "
        "same command with trainer.resume=true to continue about 2x faster"
    )
