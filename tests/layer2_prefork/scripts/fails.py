"""A script that fails before it declares anything."""

raise RuntimeError("the script failed on purpose")
