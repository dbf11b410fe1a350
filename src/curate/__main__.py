"""``python -m curate``: the command line."""

import sys

from curate.interrupts import held

try:
    # An interrupt while the command line imports is held and delivered right after, as a KeyboardInterrupt.
    with held():
        from curate.cli import main
except KeyboardInterrupt:
    print("curate: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
