"""The code that runs inside the sandbox, as one ``python -I -S -c`` source (standard library only).

Four files, concatenated in order; lines marked ``# concat: drop`` (the imports between them, for
readers and linters) are left out. See ``server`` for the processes and ``driver`` for why a verdict
cannot be forged from the candidate's side.
"""

from __future__ import annotations

from pathlib import Path

_PARTS = ("codec.py", "candidate.py", "driver.py", "server.py")


def source() -> str:
    here = Path(__file__).parent
    lines = []
    for name in _PARTS:
        text = (here / name).read_text(encoding="utf-8")
        lines += [line for line in text.splitlines() if not line.endswith("# concat: drop")]
    return "\n".join(lines) + "\n"


SOURCE = source()
