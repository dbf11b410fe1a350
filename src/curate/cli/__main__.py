"""``python -m curate.cli``: the command line (kept for scripts that call it this way)."""

from curate.cli import main

if __name__ == "__main__":
    main()
