"""The pieces of ``scripts/migrate_real_app.py`` (its docstring describes the whole run), in the order
the run uses them: ``config`` (the steps file), ``source`` (copy, prepare, migrate), ``serve`` and
``harness_runner`` (each copy in its own process, bytes counted), ``browser`` (headless Chromium drives
the steps), ``compare`` (text and pixels of every snapshot), ``leaks`` (no store data in the browser),
``report``; ``runner`` calls them in order and decides the exit code."""
