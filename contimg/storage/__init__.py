"""Storage: the retention policy and its pruner, the disk guard, and what a task does when its disk is full.

- ``policy.py``: the configuration (retention per product kind, guarded paths and their levels).
- ``inventory.py``, ``decide.py``, ``prune.py``: what is on disk, what may go (a pure function), removing it.
- ``guard.py``, ``metrics.py``: free-space probes that open and close the writers' breakers, and gauges.
- ``nospace.py``: a task's write that finds no room pauses the task instead of failing it.
- ``usage.py``: bytes on disk by kind and by night.
"""
