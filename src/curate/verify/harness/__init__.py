"""The code that runs inside the sandbox, as one ``python -I -S -c`` source (standard library only).

Four files, concatenated in order; the lines between ``# concat: drop-start`` and ``# concat: drop-end``
(the imports between them, for readers and linters) are left out. See ``server`` for the processes and
``driver`` for why a verdict
cannot be forged from the candidate's side.
"""

from __future__ import annotations

from pathlib import Path

_PARTS = ("codec.py", "candidate.py", "driver.py", "server.py")


def source() -> str:
    here = Path(__file__).parent
    lines: list[str] = []
    for name in _PARTS:
        dropping = False
        for line in (here / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("# concat: drop-"):
                dropping = line.startswith("# concat: drop-start")
            elif not dropping:
                lines.append(line)
    return "\n".join(lines) + "\n"


SOURCE = source()
