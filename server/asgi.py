"""ASGI entry point for uvicorn workers: settings from the environment.

A serving process tunes the garbage collector once: what exists after import (modules, pydantic
schemas, table metadata) lives as long as the process, so it is frozen out of the collector's
generations, and the young generation is collected every 50,000 allocations instead of 700 (a
sync batch of 500 records allocates some 100,000 objects and makes almost no cycles, so the
default collected a dozen times per request for nothing). Memory held by unreachable cycles is
bounded by the same counts; reference counting frees everything else at once.
"""

import gc

from server.app import create_app

app = create_app()

gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 20)
