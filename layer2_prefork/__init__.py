"""The pre-forking listener (Moonbridge's ``listen{...}``, ``timeout(...)`` and master)."""

__all__: list[str] = []
