"""``python -m curate``: the command line."""

import sys

try:
    from curate.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still importing: no traceback
    print("curate: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
