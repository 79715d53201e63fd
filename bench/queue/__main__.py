"""``python -m bench.queue``."""

from bench.queue.cli import main

main()
