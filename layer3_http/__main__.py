"""``python -m layer3_http [options] TARGET``: see :mod:`layer3_http._cli`."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
