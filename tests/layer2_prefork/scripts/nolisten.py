"""A script that declares no pool: the server has nothing to run."""

print("nothing to listen on", flush=True)
