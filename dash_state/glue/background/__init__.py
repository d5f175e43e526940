"""Background callbacks (``background=True``): ServerStore values through DiskcacheManager and Celery.

A background callback runs in another process: a DiskcacheManager subprocess (forked from the web
process) or a Celery worker (which imports the app module and builds the same Dash app). What a
store's job receives depends on whether that process can reach the store's backend:

* **shared backends** (redis, database): only references travel through the job queue. The worker
  resolves them with the job's user and stores the job's outputs, ``set_props`` and progress values
  itself, so DataFrames never pass through Celery's JSON and nothing the browser may not see is in
  the queue (:mod:`.worker`);
* **the memory backend** lives inside the web process: the web process resolves the store's inputs
  before the job starts (the values travel, as they would with dcc.Store) and stores what the job
  returns, sets and reports when the browser polls for it (:mod:`.web`). So an app migrated from
  dcc.Store needs no configuration; with Celery, such values must be JSON, as with dcc.Store.

Both ends need the same ``SECRET_KEY`` and ``STATE_*`` settings (a worker checks the secret and each
store's backend against what the web process sent).

Job keys are per user (:mod:`.keys`): two users sending the same inputs get their own jobs and
results, with or without ``cache_by`` (:func:`user_cache_key` is no longer needed, and harmless).

Limitations: Dash's managers keep only the last ``set_props`` call of a job between two polls.
"""
from dash_state.glue.background.web import (
           install,
           keep_references,
           take_deferred,
           user_cache_key,
)
from dash_state.glue.background.worker import (
           JobRun,
           patch_managers,
           reregister,
           wrap_job_function,
)

__all__ = ["JobRun", "install", "keep_references", "patch_managers", "reregister", "take_deferred",
           "user_cache_key", "wrap_job_function"]
