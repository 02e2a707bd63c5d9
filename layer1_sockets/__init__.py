"""Buffered sockets with blocking and non-blocking calls (Moonbridge's ``moonbridge_io``)."""

__all__: list[str] = []
