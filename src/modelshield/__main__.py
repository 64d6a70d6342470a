"""``python -m modelshield``."""

from modelshield.cli import main

main()
