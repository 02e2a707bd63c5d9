"""HTTP/1.1 on the pre-forking listener (Moonbridge's HTTP module)."""

__all__: list[str] = []
