# ruff: noqa: I001, SIM105 (one stdlib-only source in the sandbox: import order is the concatenation, contextlib costs start-up)
"""The candidate process (part of the in-sandbox harness: stdlib only).

Forked from the per-program runner, which never read the tests or the expected outputs, after it has
closed every descriptor but its own pipes, taken its limits and dropped to the candidates' uid. It holds
nothing worth stealing: the program, the arguments of the calls it is asked to make, a reply pipe
whose contents the driver treats as untrusted data. Tamper signs (an audit hook, tripwires where a
harness of the old kind kept its secrets, a look at ``builtins`` after each call) end the process with
``TAMPER_EXIT`` after writing what was seen on the sign pipe; they can only turn a verdict into a fail.
"""

import builtins
import os
import sys

# concat: drop-start (one source in the sandbox: these names come from the parts before this one)
from curate.verify.harness.codec import DataError, decode, dumps, encode, loads, read_frame, write_frame
# concat: drop-end


TAMPER_EXIT = 86
MEMORY_EXIT = 3
HARNESS_FILE = "<string>"  # the harness runs as ``python -c``: every frame of it has this file name
_FLAGGED = frozenset({
    "sys._current_frames", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace",
    "sys.setprofile", "sys.addaudithook",
})  # fmt: skip
_CMP = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__")
_PLAIN_BASES = (bool, int, float, complex, str, bytes, bytearray, list, tuple, set, frozenset, dict)


def _install_signs(sign_fd):
    exit_, write, in_hook = os._exit, os.write, [False]

    def flag(what):
        try:  # noqa: SIM105
            write(sign_fd, str(what)[:300].encode("utf-8", "replace"))
        except BaseException:
            pass
        exit_(TAMPER_EXIT)

    def hook(event, args):
        if in_hook[0]:
            return
        if event in _FLAGGED:
            flag(f"called {event}")
        elif event == "sys._getframe":
            in_hook[0] = True
            try:
                if args[0].f_code.co_filename == HARNESS_FILE:
                    flag("took a frame of the harness (sys._getframe)")
            finally:
                in_hook[0] = False
        elif event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
            flag("replaced a function's __code__")

    sys.addaudithook(hook)
    return flag


class _Tripwire:
    """Sits where an in-process harness kept its reporter, token and expected values."""

    __slots__ = ("_flag", "_name")

    def __init__(self, flag, name):
        object.__setattr__(self, "_flag", flag)
        object.__setattr__(self, "_name", name)

    def _trip(self, *a, **k):
        object.__getattribute__(self, "_flag")(f"used the harness's {object.__getattribute__(self, '_name')!r}")

    __call__ = __eq__ = __ne__ = __bool__ = __str__ = __repr__ = __iter__ = __len__ = __getitem__ = _trip
    __int__ = __index__ = __format__ = __hash__ = __contains__ = __getattr__ = __setattr__ = _trip


def _changed(pristine, harness):
    """A builtin or a name of the harness itself that the program replaced or deleted, else None."""
    bd, hd = builtins.__dict__, globals()
    for k, v in pristine.items():
        if bd.get(k, _changed) is not v:
            return f"patched builtins.{k}"
    for k, v in harness.items():
        if hd.get(k, _changed) is not v:
            return f"patched the harness's {k}"
    return None


def _snapshot():
    return dict(builtins.__dict__), {k: v for k, v in globals().items() if callable(v)}


class _Refs:
    """Objects the driver holds by reference: module-level callables by name, others by number."""

    def __init__(self, ns, flag):
        self.ns, self.flag, self.objs = ns, flag, []

    def ref(self, x):
        t = type(x)
        if isinstance(x, _PLAIN_BASES):
            base = next(b for b in t.__mro__ if b in _PLAIN_BASES)
            over = [m for m in _CMP if getattr(t, m, None) is not getattr(base, m, None)]
            if over:  # an int/str/list subclass with its own comparison: no honest program needs one
                self.flag(f"returned a {t.__name__} ({base.__name__} subclass) overriding {over[0]}")
            return encode(base(x), self.ref)
        if t.__eq__ is not object.__eq__:
            try:
                r = t.__eq__(x, object())
                always = r is not NotImplemented and bool(r)
            except BaseException:
                always = False
            if always:
                self.flag(f"returned a {t.__name__} that compares equal to anything")
        if callable(x) and self.ns.get(getattr(x, "__name__", None)) is x:
            return {"p": x.__name__}
        self.objs.append(x)
        return {"h": len(self.objs) - 1}

    def deref(self, tag, v):
        if tag == "p" and type(v) is str and v in self.ns:
            return self.ns[v]
        if tag == "h" and type(v) is int and 0 <= v < len(self.objs):
            return self.objs[v]
        raise DataError("unknown reference")


def _manifest(ns):
    names = {}
    for k, v in ns.items():
        if k.startswith("__"):
            continue
        if type(v).__name__ == "module":
            names[k] = ["m", v.__name__]
        elif callable(v):
            names[k] = ["f", None]
        else:
            try:
                names[k] = ["d", encode(v)]
            except (DataError, RecursionError):
                pass
    return names


def candidate_serve(code, req_fd, resp_fd, sign_fd, limit):
    """Run ``code`` as a module, then call what the driver asks for, one request at a time."""
    flag = _install_signs(sign_fd)
    pristine, harness = _snapshot()
    ns = {"__name__": "__candidate__", "__builtins__": builtins}
    send, os_exit = write_frame, os._exit

    def exit_(code):
        for f in (sys.stdout, sys.stderr):  # what the program printed, for the tails
            try:  # noqa: SIM105
                f.flush()
            except BaseException:
                pass
        os_exit(code)

    report = expected = token = verdict = result_fd = _Tripwire(flag, "report")  # noqa: F841 (bait)
    try:
        exec(compile(code, "<candidate>", "exec"), ns)
    except MemoryError:
        exit_(MEMORY_EXIT)
    except SystemExit as e:
        send(resp_fd, dumps(["exit", _short(e.code)]))
        exit_(0)
    except BaseException as e:
        send(resp_fd, dumps(["raise", type(e).__name__, _msg(e), "load"]))
        exit_(0)
    changed = _changed(pristine, harness)
    if changed:
        flag(changed)
    refs = _Refs(ns, flag)
    send(resp_fd, dumps(["ready", _manifest(ns)]))
    while True:
        raw = read_frame(req_fd, 1 << 30)
        if raw is None:
            exit_(0)
        try:
            target, method, args, kwargs = loads(raw)
            fn = refs.deref(*target) if type(target) is list else ns[target]
            if method is not None:
                fn = getattr(fn, method)
            args = [decode(a, refs.deref) for a in args]
            kwargs = {k: decode(v, refs.deref) for k, v in kwargs.items()}
        except BaseException as e:
            send(resp_fd, dumps(["raise", "LookupError", f"bad request: {_msg(e)}", "harness"]))
            continue
        try:
            out = fn(*args, **kwargs)
            changed = _changed(pristine, harness)
            if changed:
                flag(changed)
            reply = ["ok", encode(out, refs.ref), _mutations(args, refs)]
        except MemoryError:
            exit_(MEMORY_EXIT)
        except SystemExit as e:
            reply = ["exit", _short(e.code)]
        except (DataError, ValueError) as e:  # ValueError: an int too long to print
            reply = ["raise", "TypeError", f"the result is not plain data: {_msg(e)}", "result"]
        except BaseException as e:
            reply = ["raise", type(e).__name__, _msg(e), "call"]
        try:
            data = dumps(reply)
        except ValueError as e:
            data = dumps(["raise", "TypeError", f"the result cannot be sent: {_msg(e)}", "result"])
        if len(data) > limit:
            data = dumps(["raise", "OverflowError", f"the result is {len(data)} bytes (limit {limit})", "size"])
        send(resp_fd, data)


def _mutations(args, refs):
    """Arguments the call changed in place (lists, dicts, sets, bytearrays), sent back as new values."""
    out = []
    for i, a in enumerate(args):
        if type(a) in (list, dict, set, bytearray):
            out.append([i, encode(a, refs.ref)])
    return out


def _msg(e):
    try:
        return f"{type(e).__name__}: {e}"[:1000]
    except BaseException:  # a hostile __str__
        return type(e).__name__


def _short(code):
    return code if type(code) in (int, type(None)) else "non-integer"


def candidate_main_module(code, flag):
    """stdin/stdout shape: the program runs as ``__main__``; exit status tells how it ended."""
    import io

    report = expected = token = verdict = result_fd = _Tripwire(flag, "expected")  # noqa: F841 (bait)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=False)
    status = 0
    try:
        exec(compile(code, "<candidate>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        status = 0 if e.code in (None, 0) else 1
    except MemoryError:
        status = MEMORY_EXIT
    except BaseException as e:
        status = 1
        try:  # noqa: SIM105
            sys.stderr.write(_msg(e) + "\n")
        except BaseException:
            pass
    try:
        sys.stdout.flush()
    except BaseException:
        status = status or 1
    os._exit(status)
