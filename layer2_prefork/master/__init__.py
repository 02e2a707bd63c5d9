"""The code that runs in the master process.

`_loop` is the master loop (`Master`); `_table` is its table of worker
processes and `_handle` a worker's handle there (`WorkerProcess`,
`fork_worker`); `_pool_state` sizes a pool and `_pool_runtime` joins a
pool's sockets, queue and bookkeeping; `_schedule` times the timer
listeners; `_holding` watches the connections held until their request
arrives and `_finishing` the lingering closes and slow responses handed
over by workers; `_signals` turns signals into loop events.

Nothing here imports the worker side but `_handle` and `_table`: where
the master forks a worker, the child's entry point and what it is given,
and the worker's `GRACE`, which the master waits out before it tells a
busy worker that work waits. The public names are re-exported by
`layer2_prefork`.
"""
