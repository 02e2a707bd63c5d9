"""`python -m layer2_prefork [options] script.py [args]`: see `layer2_prefork._cli`."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
