"""``python -m otel_fakegpu``."""

from otel_fakegpu.cli import main

raise SystemExit(main())
