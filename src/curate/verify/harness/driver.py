# ruff: noqa: I001, SIM105 (one stdlib-only source in the sandbox: import order is the concatenation, contextlib costs start-up)
"""The test driver (part of the in-sandbox harness: stdlib only).

Forked from the per-program runner before any candidate process exists, at its own unprivileged uid,
not dumpable. Only it reads the tests, the expected outputs and the run's token, and only it holds the
result descriptor. The tests run here, in an interpreter the candidate never touched: the candidate's
functions are stand-ins that send the arguments over a pipe and decode the reply into plain values
(``codec``), so every comparison is this interpreter's own. The runner reports how each candidate
process ended (exit status, tamper sign, and for stdin/stdout cases the output it wrote); the driver
counts what ran and writes the one verdict.
"""

import builtins
import os
import select
import signal

# concat: drop-start (one source in the sandbox: these names come from the parts before this one)
from curate.verify.harness.candidate import MEMORY_EXIT, TAMPER_EXIT
from curate.verify.harness.codec import DataError, decode, dumps, encode, loads, read_frame, write_frame
# concat: drop-end


# Modules the tests may use under the program's name for them (``import math`` in the program, then
# ``math.isclose`` in an MBPP assert): pure ones only, so a program cannot make the driver import anything.
_TEST_MODULES = frozenset({
    "math", "cmath", "re", "string", "collections", "itertools", "functools", "heapq", "bisect", "fractions",
    "decimal", "statistics", "operator", "copy", "json", "datetime", "typing", "random", "numbers", "array",
})  # fmt: skip


class _Gone(BaseException):
    """The candidate process ended in the middle of the tests."""


class _Exited(BaseException):
    """The program called sys.exit during a call."""


class _Tampered(BaseException):
    """The reply channel carried something the candidate harness never writes."""


class _BadTests(BaseException):
    """The tests do something the sandbox cannot do across processes."""


class _Remote:
    """The driver's stand-in for a function, class or object that lives in the candidate process."""

    __slots__ = ("_link", "_target", "_name")

    def __init__(self, link, target, name):
        self._link, self._target, self._name = link, target, name

    def __call__(self, *args, **kwargs):
        return self._link.call(self._target, None, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        link, target = self._link, self._target
        return lambda *a, **k: link.call(target, name, a, k)

    def __repr__(self):
        return f"<program's {self._name}>"


class _Link:
    def __init__(self, req_fd, resp_fd, limit):
        self.req, self.resp, self.limit, self.calls = req_fd, resp_fd, limit, 0
        self.names = {}
        self.broken = None  # the first _Gone/_Exited/_Tampered, even if a test's bare except swallowed it

    def _break(self, e):
        if self.broken is None:
            self.broken = e
        return e

    def receive(self):
        try:
            raw = read_frame(self.resp, self.limit)
        except DataError as e:
            raise self._break(_Tampered(str(e))) from None
        if raw is None:
            raise self._break(_Gone())
        try:
            reply = loads(raw)
        except DataError as e:
            raise self._break(_Tampered(f"a reply that is not the harness's ({e})")) from None
        if type(reply) is not list or not reply or reply[0] not in ("ok", "raise", "exit", "ready"):
            raise self._break(_Tampered("a reply that is not the harness's"))
        return reply

    def deref(self, tag, v):
        if tag == "p" and type(v) is str:
            return self.names.get(v) or _Remote(self, v, v)
        return _Remote(self, ["h", v], f"object #{v}")

    def _ref(self, x):
        if type(x) is _Remote:
            t = x._target
            return {"h": t[1]} if type(t) is list else {"p": t}
        raise _BadTests(f"the tests pass a {type(x).__name__} to the program (only plain data crosses)")

    def call(self, target, method, args, kwargs):
        try:
            req = dumps([target, method, [encode(a, self._ref) for a in args],
                         {str(k): encode(v, self._ref) for k, v in kwargs.items()}])  # fmt: skip
        except (DataError, ValueError) as e:
            raise _BadTests(f"the tests pass something that is not plain data ({e})") from None
        try:
            write_frame(self.req, req)
        except OSError:
            raise self._break(_Gone()) from None
        reply = self.receive()
        if select.select([self.resp], [], [], 0)[0]:  # bytes nobody asked for: replies queued ahead
            raise self._break(_Tampered("the program wrote into the reply channel"))
        self.calls += 1
        try:
            if reply[0] == "ok":
                out = decode(reply[1], self.deref)
                for i, new in reply[2]:
                    _update(args[i], decode(new, self.deref))
                return out
        except (DataError, TypeError, ValueError, IndexError) as e:
            raise self._break(_Tampered(f"a reply that is not the harness's ({e})")) from None
        if reply[0] == "exit":
            raise self._break(_Exited(reply[1]))
        if reply[0] == "raise" and len(reply) == 4:
            raise _candidate_error(str(reply[1]), str(reply[2]), str(reply[3]))
        raise self._break(_Tampered("a reply that is not the harness's"))


class CandidateError(Exception):
    """An exception of the program that is not a builtin one (its type name and message only)."""


def _candidate_error(name, msg, where):
    cls = getattr(builtins, name, None)
    e = None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            e = cls(msg)
        except Exception:
            e = None
    e = e or CandidateError(msg)
    e.curate_candidate = where  # the driver's mark: this came from the program, not from the tests
    return e


def _update(old, new):
    """Apply an in-place change the call made to an argument (lists, dicts, sets, bytearrays)."""
    if type(old) is not type(new) or old == new:
        return
    if type(old) in (list, bytearray):
        old[:] = new
    else:
        old.clear()
        old.update(new)


def _tests_namespace(link, manifest, setup, entry_point):
    import importlib

    ns = {"__name__": "__tests__", "__builtins__": builtins}
    for name, (kind, value) in manifest.items():
        if kind == "f":
            ns[name] = link.names[name] = _Remote(link, name, name)
        elif kind == "d":
            ns[name] = decode(value)
        elif kind == "m" and value in _TEST_MODULES:
            try:  # the program's imports, for tests that use them unimported (MBPP's math.isclose)
                ns[name] = importlib.import_module(value)
            except BaseException:
                pass
    if setup:  # trusted definitions from the problem (HumanEval's helpers) win over the program's
        exec(compile(setup, "<setup>", "exec"), ns)
        if entry_point in link.names:
            ns[entry_point] = link.names[entry_point]
    return ns


def _run_tests(s, link):
    import ast

    reply = link.receive()
    if reply[0] == "exit":
        return "incomplete", f"the program exited (SystemExit {reply[1]!r}) before the tests ran"
    if reply[0] == "raise":
        return "error", str(reply[2])
    if reply[0] != "ready" or type(reply[1]) is not dict:
        raise _Tampered("a reply that is not the harness's")
    ep = s["entry_point"]
    try:
        ns = _tests_namespace(link, reply[1], s["setup"], ep)
    except (DataError, TypeError, ValueError) as e:
        raise _Tampered(f"a reply that is not the harness's ({type(e).__name__})") from None
    body = ast.parse(s["tests"], "<tests>").body
    for stmt in body:  # one statement at a time: what ran is counted here, not by the program
        exec(compile(ast.Module([stmt], []), "<tests>", "exec"), ns)
    ran = f"{len(body)} test statements"
    if ep and callable(ns.get("check")):
        if ep not in link.names:
            return "error", f"entry point {ep!r} is not defined"
        ns["check"](link.names[ep])
        ran = "check() ran to its end"
    return "pass", f"{ran}, {link.calls} calls"


def _ended(end):
    """What a candidate process's end says: None when it ended on its own terms."""
    how, code, sign = end
    if how == "exit" and code == TAMPER_EXIT:
        return "tampered", sign or "tamper sign"
    if how == "exit" and code == MEMORY_EXIT:
        return "memory", "MemoryError"
    if how == "signal":
        if code == signal.SIGXCPU:
            return "timeout", "CPU time limit"
        if code == signal.SIGXFSZ:
            return "output_limit", "file size limit"
        return "error", f"killed by signal {code}"
    return None


def _norm(s):
    return [line.rstrip() for line in s.strip().splitlines()]


def driver_main(secret_fd, result_fd, req_fd, resp_fd, link_in, link_out, public):
    import marshal

    chunks = []
    while chunk := os.read(secret_fd, 1 << 20):
        chunks.append(chunk)
    os.close(secret_fd)
    s = marshal.loads(b"".join(chunks))
    status, detail = "pass", ""

    def runner_report():
        raw = read_frame(link_in, 1 << 31)
        return loads(raw) if raw else ["exit", -1, ""]

    if s["tests"] is not None:
        link = _Link(req_fd, resp_fd, public["reply_limit"])
        try:
            status, detail = _run_tests(s, link)
            if link.broken is not None:  # swallowed by a bare ``except:`` in the tests
                raise link.broken
        except _Gone:
            status, detail = "incomplete", f"the program ended after {link.calls} calls, before the tests did"
        except _Exited as e:
            status, detail = "incomplete", f"the program exited (SystemExit {e.args[0]!r}) during the tests"
        except _Tampered as e:
            status, detail = "tampered", str(e)
        except _BadTests as e:
            status, detail = "bad_tests", str(e)
        except AssertionError as e:
            status, detail = "tests_failed", _where(e, link)
        except MemoryError:
            status, detail = "memory", "MemoryError"
        except RecursionError as e:
            status, detail = "error", _where(e, link)
        except Exception as e:
            status, detail = "error", _where(e, link)
        os.close(req_fd)  # the candidate process reads EOF and leaves
        end = runner_report()
        why = _ended(end[:3])
        if why and (why[0] == "tampered" or status in ("incomplete", "pass")):
            status, detail = why
        elif end[0] == "exit" and end[1] not in (0, -1) and status == "incomplete":
            detail += f" (exit status {end[1]})"
        os.write(link_out, b"g" if status == "pass" else b"s")
    for i, expected in enumerate(s["outputs"]):
        if status != "pass":
            break
        end = runner_report()
        raw = read_frame(link_in, 1 << 31) or b""
        why = _ended(end[:3])
        if why:
            status, detail = why[0], f"case {i}: {why[1]}"
        elif len(raw) >= public["fsize"]:
            status, detail = "output_limit", f"case {i}: more than {public['fsize']} bytes of output"
        elif end[1] != 0:
            status, detail = "error", f"case {i}: exit status {end[1]}"
        else:
            got = raw.decode("utf-8", "replace")
            if _norm(got) != _norm(expected):
                status, detail = "tests_failed", f"case {i}: expected {expected[:200]!r}, got {got[:200]!r}"
            else:
                detail = f"{i + 1}/{len(s['outputs'])} cases"
        os.write(link_out, b"g" if status == "pass" else b"s")
    os.write(result_fd, (s["token"] + " " + status + "\n" + detail).encode("utf-8", "replace")[:3000])
    os._exit(0)


def _where(e, link):
    origin = getattr(e, "curate_candidate", None)
    try:
        text = f"{type(e).__name__}: {e}"[:900]
    except BaseException:
        text = type(e).__name__
    if origin is not None:
        return f"the program raised {text}"
    return f"{text} (after {link.calls} calls)"
