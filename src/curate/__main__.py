"""``python -m curate``: the command line."""

import signal
import sys

# Ctrl-C or SIGTERM while the command line imports is recorded, not raised: inside a library's import it
# would come back as some other exception and a traceback (see curate.cli.interrupts, which cannot be
# imported before the command line it belongs to).
_received: list[int] = []
_previous = {s: signal.signal(s, lambda n, _: _received.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
try:
    from curate.cli import main
finally:
    for _s, _h in _previous.items():
        signal.signal(_s, _h)
if _received:
    print("curate: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
