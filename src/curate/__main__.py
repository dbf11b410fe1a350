"""``python -m curate``: the command line."""

import signal
import sys

_STOP = {signal.SIGINT, signal.SIGTERM}

try:
    # Held while the command line imports: an interrupt inside a library's import machinery can come back as
    # another exception (a traceback). A held Ctrl-C is delivered right after, as a KeyboardInterrupt here.
    _held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP)
    try:
        from curate.cli import main
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, _held)
except KeyboardInterrupt:
    print("curate: interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
