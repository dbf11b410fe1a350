# ruff: noqa: I001, SIM105 (one stdlib-only source in the sandbox: import order is the concatenation, contextlib costs start-up)
"""Plain data across the candidate/driver boundary (part of the in-sandbox harness: stdlib only).

The candidate process encodes what its functions return; the driver decodes it into values built by
its own interpreter. ``json`` is the parser on the driver's side because it is safe on hostile input
(``marshal`` is not, and can build code objects); tags keep the types ``json`` lacks. Whatever the
candidate sends, the driver ends up with exact builtin types whose comparisons are the interpreter's:
an object "equal to everything" cannot cross. Callables and other objects cross as references that the
driver can call but that compare by identity only.
"""

import json

# concat: drop-start (one source in the sandbox: these names come from the parts before this one)
# concat: drop-end

# tag -> builtin type of the value (JSON arrays are lists; dicts carry one tag each)
_SEQ_TAGS = {"t": tuple, "s": set, "f": frozenset}
MAX_DEPTH = 200


class DataError(Exception):
    """A value that cannot cross: not plain data, or a frame that is not well formed."""


def encode(x, ref=None, depth=0):
    """A JSON-able tree for ``x``; ``ref(x)`` names objects that are not data (or raises DataError)."""
    t = type(x)
    if t is str or t is int or t is bool or x is None:
        return x
    if t is float:
        return x if x == x and x not in (float("inf"), float("-inf")) else {"r": repr(x)}
    if depth > MAX_DEPTH:
        raise DataError("nested too deeply")
    d = depth + 1
    if t is list:
        return [encode(v, ref, d) for v in x]
    if t is tuple or t is set or t is frozenset:
        tag = "t" if t is tuple else ("s" if t is set else "f")
        return {tag: [encode(v, ref, d) for v in x]}
    if t is dict:
        return {"d": [[encode(k, ref, d), encode(v, ref, d)] for k, v in x.items()]}
    if t is bytes or t is bytearray:
        return {"b" if t is bytes else "y": x.hex()}
    if t is complex:
        return {"c": [encode(x.real), encode(x.imag)]}
    if ref is None:
        raise DataError(f"a {t.__name__} is not plain data")
    return ref(x)


def decode(j, deref=None, depth=0):
    """Inverse of ``encode``: exact builtin types only; ``deref`` turns a reference into an object."""
    t = type(j)
    if t is str or t is int or t is bool or t is float or j is None:
        return j
    if depth > MAX_DEPTH:
        raise DataError("nested too deeply")
    d = depth + 1
    if t is list:
        return [decode(v, deref, d) for v in j]
    if t is not dict or len(j) != 1:
        raise DataError("malformed value")
    ((tag, v),) = j.items()
    try:
        if tag in _SEQ_TAGS and type(v) is list:
            return _SEQ_TAGS[tag](decode(e, deref, d) for e in v)
        if tag == "d" and type(v) is list:
            return {decode(k, deref, d): decode(w, deref, d) for k, w in v}
        if tag == "r" and v in ("nan", "inf", "-inf"):
            return float(v)
        if tag in ("b", "y") and type(v) is str:
            return (bytes if tag == "b" else bytearray).fromhex(v)
        if tag == "c" and type(v) is list and len(v) == 2:
            return complex(decode(v[0], None, d), decode(v[1], None, d))
        if tag in ("p", "h") and deref is not None:
            return deref(tag, v)
    except (TypeError, ValueError) as e:  # unhashable set element, bad hex, wrong arity ...
        raise DataError(f"malformed value ({type(e).__name__})") from None
    raise DataError(f"malformed value (tag {str(tag)[:10]!r})")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def loads(raw):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # includes ints past the 4300-digit limit
        raise DataError(f"malformed frame ({type(e).__name__})") from None


# Frames on a pipe: 4-byte big-endian length, then the bytes.


def write_frame(fd, data):
    import os

    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def read_exact(fd, n):
    import os

    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd, limit):
    """The next frame's bytes; None at EOF; DataError past ``limit`` bytes."""
    head = read_exact(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > limit:
        raise DataError(f"a reply of {n} bytes (limit {limit})")
    return read_exact(fd, n)
