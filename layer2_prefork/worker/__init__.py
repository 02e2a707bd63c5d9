"""The code that runs in a worker process.

`_loop` is the worker loop (`Worker`, `main`, `stopping`, `stop_fd`);
`_park` hands an idle connection back to the master, `_handover` hands it
the waits at a connection's end (`linger`, `send_rest`), and `_timeout` is
the watchdog a handler arms against itself.

Nothing here imports the master side; the public names are re-exported by
`layer2_prefork`.
"""
