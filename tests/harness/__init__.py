"""One harness for the tests and the benchmarks (warehouse's ``tests/common`` is the model).

``polling``   wait with a deadline, race threads
``bodies``    request bodies: consumers, workers, jobs
``http``      clients: over Flask's test client (``Api``) and over the network (``Client``)
``database``  fresh migrated databases, emptying them, counting rows
``servers``   the production processes (gunicorn, Celery worker, beat) on ``gigco.processes``
``env``       the settings every live process of a test run shares
``console``   a browser-like client of the operators' console
``journeys``  jobs driven over HTTP to a known state
``kit``       jobs driven on a test clock of ``gigco.testing``'s in-process GigCo

Nothing here imports pytest, so ``bench/`` can use all of it.
"""
