"""The in-sandbox harness. Standard library only: its source is run with ``python -I -S -c``.

It runs as pid 2 of a bubblewrap pid namespace, as uid 0 holding only CAP_SETUID/CAP_SETGID
(``uid`` is None when bwrap had to use a user namespace). It never runs candidate code itself: each
test run is a forked child that closes the harness's descriptors, takes its rlimits, drops to an
unprivileged uid (so it can neither signal the harness nor open ``/proc/<harness>/fd``) and only then
executes the candidate. The verdict is written on the result fd, prefixed by the run's nonce, which the
harness reads from its own pipe only after every child is gone: no child ever had it in memory.

argv: ``result_fd nonce_fd`` (one program; stdin: ``marshal`` payload of code, tests, entry_point, io,
limits, uid), or ``zygote ctl_fd uid`` (many programs, see ``serve``).
"""

import builtins
import marshal
import os
import resource
import signal
import sys
import time

_PLAIN = (int, float, str, bool, type(None), complex, bytes)
_FAILS = ("tests_failed", "error", "memory", "timeout", "output_limit")


def _msg(e):
    try:
        return f"{type(e).__name__}: {e}"[:1000]
    except BaseException:  # a hostile __str__
        return type(e).__name__


def _confine(p, keep_fds):
    for fd in p["private"]:
        if fd not in keep_fds:
            os.close(fd)
    lim = resource.setrlimit
    mem = p["memory"]
    lim(resource.RLIMIT_AS, (mem, mem))
    lim(resource.RLIMIT_CPU, (p["cpu"], p["cpu"] + 1))
    lim(resource.RLIMIT_FSIZE, (p["fsize"], p["fsize"]))
    lim(resource.RLIMIT_NOFILE, (p["nofile"], p["nofile"]))
    lim(resource.RLIMIT_CORE, (0, 0))
    lim(resource.RLIMIT_MSGQUEUE, (0, 0))  # no POSIX message queues (they would outlive the program)
    lim(resource.RLIMIT_NPROC, (p["nproc"], p["nproc"]))
    uid = p["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # drops every capability


def _is_plain(x, depth=0):
    t = type(x)
    if t in _PLAIN:
        return True
    if depth > 64:
        return False
    if t in (list, tuple, set, frozenset):
        return all(_is_plain(v, depth + 1) for v in x)
    if t is dict:
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in x.items())
    return False


def _guard(fn):
    """Refuse return values that could compare equal to anything (``__eq__`` returning True)."""

    def candidate(*args, **kwargs):
        out = fn(*args, **kwargs)
        if not _is_plain(out):
            raise AssertionError(f"candidate returned a {type(out).__name__}, not a plain value")
        return out

    return candidate


def _tests_child(p, w, token):
    write, exit_ = os.write, os._exit

    def report(status, detail=""):
        for f in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 (contextlib would cost start-up time)
                f.flush()
            except BaseException:
                pass
        write(w, (token + " " + status + "\n" + detail).encode("utf-8", "replace")[:3000])
        exit_(0)

    pristine = dict(builtins.__dict__)
    ns = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(compile(p["code"], "<candidate>", "exec"), ns)
    except MemoryError:
        report("memory", "MemoryError while loading the program")
    except SystemExit as e:
        report("error", f"the program exited (SystemExit {e.code!r}) before the tests ran")
    except BaseException as e:
        report("error", _msg(e))
    # Undo patches of builtins and keep the candidate's globals from shadowing them in the tests.
    bd = builtins.__dict__
    for k in [k for k in bd if k not in pristine]:
        del bd[k]
    bd.update(pristine)
    tns = {k: v for k, v in ns.items() if k not in pristine}
    tns.update(__name__="__tests__", __builtins__=builtins)
    ep = p["entry_point"]
    try:
        exec(compile(p["tests"], "<tests>", "exec"), tns)
        check = tns.get("check")
        if ep and callable(check):
            if ep not in ns:
                report("error", f"entry point {ep!r} is not defined")
            fn = ns[ep]
            check(_guard(fn) if p["plain_returns"] else fn)
    except AssertionError as e:
        report("tests_failed", _msg(e))
    except MemoryError:
        report("memory", "MemoryError")
    except SystemExit as e:
        report("error", f"the program exited (SystemExit {e.code!r}) during the tests")
    except BaseException as e:
        report("error", _msg(e))
    report("pass")


def _io_child(p, inp, out):
    os.dup2(inp, 0)
    os.dup2(out, 1)
    os.close(inp)
    os.close(out)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    code = 0
    try:
        exec(compile(p["code"], "<candidate>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        code = 0 if e.code in (None, 0) else 1
    except MemoryError:
        code = 3
    except BaseException as e:
        code = 1
        try:  # noqa: SIM105
            sys.stderr.write(_msg(e) + "\n")
        except BaseException:
            pass
    try:
        sys.stdout.flush()
    except BaseException:
        code = code or 1
    os._exit(code)


def _by_signal(sig, what):
    if sig == signal.SIGXCPU:
        return "timeout", f"{what}: CPU time limit"
    if sig == signal.SIGXFSZ:
        return "output_limit", f"{what}: file size limit"
    return "error", f"{what}: killed by signal {sig}"


def _fork(p, body, keep):
    pid = os.fork()
    if pid == 0:
        try:
            _confine(p, keep)
            body()
        finally:
            os._exit(70)
    _, status = os.waitpid(pid, 0)
    return status


def run_tests(p):
    r, w = os.pipe()
    token = os.urandom(16).hex()
    status = _fork(p, lambda: _tests_child(p, w, token), (w,))
    os.close(w)
    os.set_blocking(r, False)  # a detached grandchild may hold the pipe open: never wait for EOF
    try:
        data = os.read(r, 4096)
    except BlockingIOError:
        data = b""
    os.close(r)
    head, _, detail = data.decode("utf-8", "replace").partition("\n")
    tok, _, verdict = head.partition(" ")
    if tok == token and os.WIFEXITED(status) and (verdict == "pass" or verdict in _FAILS):
        return verdict, detail
    if os.WIFSIGNALED(status):
        return _by_signal(os.WTERMSIG(status), "tests")
    return (
        "error",
        f"the program exited (status {os.waitstatus_to_exitcode(status)}) before the tests finished",
    )


def _norm(s):
    return [line.rstrip() for line in s.strip().splitlines()]


def run_io(p, i, case):
    stdin, expected = case
    path_in, path_out = f"/tmp/.in{i}", f"/tmp/.out{i}"
    try:
        with open(path_in, "w", encoding="utf-8") as f:
            f.write(stdin)
        inp = os.open(path_in, os.O_RDONLY)
        out = os.open(path_out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        return "error", f"case {i}: cannot stage the input ({e.strerror})"
    status = _fork(p, lambda: _io_child(p, inp, out), (inp, out))
    os.close(inp)
    os.lseek(out, 0, 0)
    raw = os.read(out, p["fsize"] + 1)
    os.close(out)
    os.unlink(path_in)
    os.unlink(path_out)
    if len(raw) >= p["fsize"]:  # Python ignores SIGXFSZ: the write failed with EFBIG instead
        return "output_limit", f"case {i}: more than {p['fsize']} bytes of output"
    got = raw.decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        return _by_signal(os.WTERMSIG(status), f"case {i}")
    code = os.waitstatus_to_exitcode(status)
    if code == 3:
        return "memory", f"case {i}: MemoryError"
    if code != 0:
        return "error", f"case {i}: exit status {code}"
    if _norm(got) != _norm(expected):
        return "tests_failed", f"case {i}: expected {expected[:200]!r}, got {got[:200]!r}"
    return "pass", ""


def main(result_fd, nonce_fd, uid=-1):
    p = marshal.loads(sys.stdin.buffer.read())
    if uid != -1:  # zygote mode: the uid is the zygote's, whatever the payload says
        p["uid"] = uid
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    p["private"] = (result_fd, nonce_fd)
    verdict, detail = "pass", ""
    if p["tests"] is not None:
        verdict, detail = run_tests(p)
    for i, case in enumerate(p["io"]):
        if verdict != "pass":
            break
        verdict, detail = run_io(p, i, case)
    nonce = os.read(nonce_fd, 64)
    os.write(result_fd, nonce + b" " + verdict.encode() + b"\n" + detail.encode("utf-8", "replace")[:2000])
    os._exit(0)


# ---- zygote mode: one sandbox, many programs ------------------------------------------------------
# The zygote (this process, pid 2) never reads a payload nor runs candidate code, so every fork of it
# starts from the same pristine state. Per program the host sends, over the control socket, five fresh
# descriptors: payload (read), stdout, stderr, result (write), nonce (read). The zygote forks a runner
# that puts them on 0/1/2 and runs ``main`` exactly as a one-program sandbox would; once the runner is
# gone it kills every process of the candidates' uid, deletes what they left (files under /tmp, SysV
# IPC objects) and answers ``ok`` only if nothing is left, else ``dirty <why>`` and exits: the host then
# throws this sandbox away. A pid namespace, a tmpfs and an IPC namespace per program would need
# CAP_SYS_ADMIN here; emptying and checking them is what keeps the zygote unprivileged.

_IPC = (  # (ctl function, INFO cmd, STAT_ANY cmd); IPC_RMID = 0
    ("shmctl", 14, 15),
    ("semctl", 19, 20),
    ("msgctl", 12, 13),
)


_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 311, "s390x": 281}  # SYS_keyctl


def _ipc_objects(libc, buf):
    found = []
    for name, info, stat_any in _IPC:
        ctl = getattr(libc, name)
        args = (0,) if name == "semctl" else ()
        top = ctl(0, *args, info, buf)
        for idx in range(max(top, 0) + 1):
            ident = ctl(idx, *args, stat_any, buf)
            if ident >= 0:
                found.append((ctl, args, ident))
    return found


def _remove_tree(path, uid):
    for entry in os.scandir(path):
        full = entry.path
        if entry.stat(follow_symlinks=False).st_uid != uid:
            continue  # the runner's own files (root): the zygote removes those, and checks
        if entry.is_dir(follow_symlinks=False):
            os.chmod(full, 0o700)  # the owner may always do this, whatever mode the program set
            _remove_tree(full, uid)
            os.rmdir(full)
        else:
            os.unlink(full)


def _clean_as(uid, ipc):
    """In a child at the candidates' uid: kill all of its processes, empty /tmp, clear its keyrings,
    drop SysV IPC objects. Any failure exits non-zero: the zygote is then thrown away."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # kill(-1) spares the caller and pid 1, and a fork cannot outrun it (tasklist lock); but it cannot
    # say when all are gone (it counts the zygote too). RLIMIT_NPROC counts the uid's tasks until they
    # are reaped: at 2, a fork succeeds only if this process is the uid's last one.
    resource.setrlimit(resource.RLIMIT_NPROC, (2, 2))
    deadline = time.monotonic() + 3.0
    while True:
        os.kill(-1, signal.SIGKILL)
        try:
            pid = os.fork()
        except BlockingIOError:
            if time.monotonic() > deadline:
                os._exit(11)
            time.sleep(0.0005)  # killed processes count until pid 1 (bwrap) reaps them
            continue
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        break
    _remove_tree("/tmp", uid)
    libc, buf = ipc
    keyctl = _KEYCTL.get(os.uname().machine)
    for ring in (-4, -5):  # KEYCTL_CLEAR the uid's user and user-session keyrings (kept by the kernel)
        if keyctl is not None and libc.syscall(keyctl, 7, ring) != 0:
            os._exit(14)
    for ctl, args, ident in _ipc_objects(libc, buf):
        ctl(ident, *args, 0, None)
    if _ipc_objects(libc, buf):
        os._exit(12)
    os._exit(0)


def _cleanup(uid, ipc):
    pid = os.fork()
    if pid == 0:
        try:
            _clean_as(uid, ipc)
        finally:
            os._exit(13)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return f"cleanup failed (status {os.waitstatus_to_exitcode(status)})"
    for name in os.listdir("/tmp"):  # files of the runner (root), e.g. after it was killed
        try:  # noqa: SIM105 (contextlib would cost start-up time)
            os.unlink("/tmp/" + name)
        except OSError:
            pass
    left = os.listdir("/tmp")
    return f"/tmp not empty: {left[:3]}" if left else ""


def serve(ctl_fd, uid):
    import _socket

    sock = _socket.socket(fileno=ctl_fd)
    try:
        import ctypes

        ipc = (ctypes.CDLL(None), ctypes.create_string_buffer(4096))
        _ipc_objects(*ipc)
    except Exception as e:  # without SysV IPC cleanup a zygote could carry state: refuse to serve
        sock.sendall(b"dirty no IPC cleanup: " + _msg(e).encode() + b"\n")
        os._exit(0)
    sock.sendall(b"ready\n")
    fd_space = _socket.CMSG_LEN(5 * 4)
    while True:
        msg, anc, _, _ = sock.recvmsg(16, fd_space)
        fds = [int.from_bytes(d[i : i + 4], sys.byteorder) for _, _, d in anc for i in range(0, len(d), 4)]
        if msg != b"run\n" or len(fds) != 5:
            os._exit(0)  # the host closed the socket (or broke protocol): the sandbox ends
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                for i in range(3):
                    os.dup2(fds[i], i)
                    os.close(fds[i])
                main(fds[3], fds[4], uid)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        os.waitpid(pid, 0)
        why = _cleanup(uid, ipc)
        sock.sendall(b"dirty " + why.encode() + b"\n" if why else b"ok\n")
        if why:
            os._exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "zygote":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(int(sys.argv[1]), int(sys.argv[2]))
