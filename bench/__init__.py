"""Benchmarks anyone can run, one module each: ``python -m bench.<name>``.

Runnable: ``queue`` (the engine alone), ``peers`` (side by side with PgQueuer), ``profile`` (where a drain's
time goes), ``chaos`` (kills and a restart), ``science`` and ``accuracy``. Shared by them: ``postgres`` (the
server and the scratch database), ``processes`` (worker processes) and ``systems`` (the queue systems
``peers`` and ``profile`` drive).
"""
