"""Queued runs and the workers that execute them (``run --detach``, ``agentform worker``).

On PostgreSQL a queued run is a procrastinate job in the store's own schema: ``queue.py``
records the run (``run.queued``, its revision pinned) and defers the job; ``worker.py`` is
the procrastinate worker whose task executes the run through the owner compare-and-set,
with periodic tasks that retry the jobs of stalled workers and record approval timeouts.
On SQLite there is no worker: ``detached.py`` executes a queued run in a background process
of its own. Nothing here is imported by ``validate``; procrastinate only by the PostgreSQL path.
"""
