# ruff: noqa: I001, SIM105 (one stdlib-only source in the sandbox: import order is the concatenation, contextlib costs start-up)
"""The sandbox's long-lived process and the per-program runner (part of the harness: stdlib only).

``serve`` runs as pid 2 of a bubblewrap pid namespace, as root holding only CAP_SETUID/CAP_SETGID
(without root: the caller's uid in a user namespace, ``uids`` = -1). It never reads a payload nor runs
candidate code, so every fork of it starts pristine. Per program the host sends five descriptors over
the control socket: the public payload (program, stdin inputs, limits), the secret payload (tests,
setup, expected outputs, token), stdout, stderr and the result pipe. ``serve`` forks a runner, which:

1. reads the public payload only;
2. forks the driver (``driver.driver_main``) at the driver uid, handing it the secret payload and the
   result pipe, then closes both: no later fork of the runner can hold them;
3. forks the candidate processes at the candidate uid (``candidate.candidate_serve`` for the tests, one
   ``candidate_main_module`` per stdin/stdout case), reaps each and reports to the driver how it ended.

Last, the runner becomes the candidates' uid, kills every process of it and deletes what they left
(files under /tmp, SysV IPC objects, keyrings); ``serve`` answers ``ok`` only if that succeeded and
nothing is left, else ``dirty <why>`` and exits, and the host throws the sandbox away. With ``once``
it serves one program and exits: the sandbox ends with it, which is the cleanup.
"""

import marshal
import os
import resource
import signal
import sys
import time

# concat: drop-start (one source in the sandbox: these names come from the parts before this one)
from curate.verify.harness.candidate import _install_signs, candidate_main_module, candidate_serve
from curate.verify.harness.codec import dumps, write_frame
from curate.verify.harness.driver import driver_main
# concat: drop-end


_IPC = (("shmctl", 14, 15), ("semctl", 19, 20), ("msgctl", 12, 13))  # (ctl, INFO, STAT_ANY); IPC_RMID=0
_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 311, "s390x": 281}  # SYS_keyctl
_LIBC = []  # [ctypes.CDLL(None), buffer] once loaded


def _keep_only(keep):
    last = 2
    for fd in sorted(keep):
        if fd > last + 1:
            os.closerange(last + 1, fd)
        last = max(last, fd)
    os.closerange(last + 1, 1024)


def _confine(p, uid, keep, nproc):
    _keep_only(keep)
    lim = resource.setrlimit
    lim(resource.RLIMIT_AS, (p["memory"], p["memory"]))
    lim(resource.RLIMIT_CPU, (p["cpu"], p["cpu"] + 1))
    lim(resource.RLIMIT_FSIZE, (p["fsize"], p["fsize"]))
    lim(resource.RLIMIT_NOFILE, (p["nofile"], p["nofile"]))
    lim(resource.RLIMIT_CORE, (0, 0))
    lim(resource.RLIMIT_MSGQUEUE, (0, 0))  # no POSIX message queues (they would outlive the program)
    lim(resource.RLIMIT_NPROC, (nproc, nproc))
    if uid >= 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # drops every capability, and makes the process non-dumpable


def _fork(body):
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(70)
    return pid


def _end(status, sign_r):
    try:
        sign = os.read(sign_r, 400).decode("utf-8", "replace")
    except OSError:
        sign = ""
    os.close(sign_r)
    if os.WIFSIGNALED(status):
        return ["signal", os.WTERMSIG(status), sign]
    return ["exit", os.waitstatus_to_exitcode(status), sign]


def _tell(link_out, link_in, frames):
    """Send the driver how a candidate process ended; True when it wants the next one."""
    try:
        for f in frames:
            write_frame(link_out, f)
        return os.read(link_in, 1) == b"g"
    except OSError:
        return False


def _candidate_tests(p, uid, req_r, resp_w):
    sign_r, sign_w = os.pipe()
    os.set_blocking(sign_r, False)

    def body():
        _confine(p, uid, (0, 1, 2, req_r, resp_w, sign_w), p["nproc"])
        candidate_serve(p["code"], req_r, resp_w, sign_w, p["reply_limit"])

    pid = _fork(body)
    for fd in (req_r, resp_w, sign_w):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return _end(status, sign_r)


def _candidate_case(p, uid, i, stdin):
    # Anonymous files: nothing under /tmp for the program to plant or find; RLIMIT_FSIZE still applies.
    inp, out = os.memfd_create(f"in{i}"), os.memfd_create(f"out{i}")
    data = memoryview(stdin.encode("utf-8", "replace"))
    while data:
        data = data[os.write(inp, data) :]
    os.lseek(inp, 0, 0)
    sign_r, sign_w = os.pipe()
    os.set_blocking(sign_r, False)

    def body():
        os.dup2(inp, 0)
        os.dup2(out, 1)
        _confine(p, uid, (0, 1, 2, sign_w), p["nproc"])
        candidate_main_module(p["code"], _install_signs(sign_w))

    pid = _fork(body)
    os.close(inp)
    os.close(sign_w)
    _, status = os.waitpid(pid, 0)
    os.lseek(out, 0, 0)
    raw = os.read(out, p["fsize"] + 1)  # Python ignores SIGXFSZ: past the limit a write fails (EFBIG)
    os.close(out)
    return _end(status, sign_r), raw


def run_program(fds, uid_c, uid_d, clean):
    public_r, secret_r, out_w, err_w, result_w = fds
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    for fd in (out_w, err_w, null):
        os.close(fd)
    chunks = []
    while chunk := os.read(public_r, 1 << 20):
        chunks.append(chunk)
    os.close(public_r)
    p = marshal.loads(b"".join(chunks))
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    to_d_r, to_d_w = os.pipe()
    from_d_r, from_d_w = os.pipe()

    def driver():
        os.dup2(0, 1)  # the tests' prints go nowhere; stderr stays (the driver's own failures)
        _confine(p, uid_d, (0, 1, 2, secret_r, result_w, req_w, resp_r, to_d_r, from_d_w), 4)
        if _LIBC:
            _LIBC[0].prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, even from the same uid
        driver_main(secret_r, result_w, req_w, resp_r, to_d_r, from_d_w, p)

    d_pid = _fork(driver)
    for fd in (secret_r, result_w, req_w, resp_r, to_d_r, from_d_w):
        os.close(fd)
    go = True
    if p["has_tests"]:
        go = _tell(to_d_w, from_d_r, [dumps(_candidate_tests(p, uid_c, req_r, resp_w))])
    else:
        os.close(req_r)
        os.close(resp_w)
    for i, stdin in enumerate(p["inputs"]):
        if not go:
            break
        end, raw = _candidate_case(p, uid_c, i, stdin)
        go = _tell(to_d_w, from_d_r, [dumps(end), raw])
    os.close(to_d_w)
    os.waitpid(d_pid, 0)
    if clean:  # the runner's last act: become the candidates' uid and empty the sandbox (exit status)
        _clean_as(uid_c)
    os._exit(0)


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


def _clean_as(uid):
    """In a child at ``uid``: kill all of its processes, empty /tmp, clear its keyrings, drop SysV IPC
    objects. Any failure exits non-zero: the sandbox is then thrown away."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # kill(-1) spares the caller and pid 1, and a fork cannot outrun it (tasklist lock); but it cannot
    # say when all are gone. RLIMIT_NPROC counts the uid's tasks until they are reaped: at 2, a fork
    # succeeds only if this process is the uid's last one.
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
    libc, buf = _LIBC
    keyctl = _KEYCTL.get(os.uname().machine)
    for ring in (-4, -5):  # KEYCTL_CLEAR the uid's user and user-session keyrings (kept by the kernel)
        if keyctl is not None and libc.syscall(keyctl, 7, ring) != 0:
            os._exit(14)
    for ctl, args, ident in _ipc_objects(libc, buf):
        ctl(ident, *args, 0, None)
    if _ipc_objects(libc, buf):
        os._exit(12)
    os._exit(0)


def _after(status):
    """'' when the runner emptied the sandbox (``_clean_as``'s exit status 0), else why not."""
    if os.waitstatus_to_exitcode(status) != 0:
        return f"cleanup failed (status {os.waitstatus_to_exitcode(status)})"
    for name in os.listdir("/tmp"):  # files of the runner (root), e.g. after it was killed
        try:  # noqa: SIM105 (contextlib would cost start-up time)
            os.unlink("/tmp/" + name)
        except OSError:
            pass
    left = os.listdir("/tmp")
    return f"/tmp not empty: {left[:3]}" if left else ""


# Imported once here, before any fork, instead of once per program: the driver's own modules and what
# HumanEval/MBPP-style programs import most. Forks share them; no program's state is in them yet.
_PRELOAD = (
    "ast",
    "importlib",
    "select",
    "typing",
    "collections",
    "math",
    "re",
    "itertools",
    "functools",
    "heapq",
    "string",
    "bisect",
)


def serve(ctl_fd, uid_c, uid_d, once):
    import _socket

    if not once:
        for name in _PRELOAD:
            __import__(name)

    sock = _socket.socket(fileno=ctl_fd)
    try:
        import ctypes

        _LIBC[:] = [ctypes.CDLL(None), ctypes.create_string_buffer(4096)]
        _ipc_objects(*_LIBC)
    except Exception as e:  # without SysV IPC cleanup a zygote could carry state: refuse to serve
        if not once:
            sock.sendall(b"dirty no IPC cleanup: " + repr(e).encode()[:200] + b"\n")
            os._exit(0)
    sock.sendall(b"ready\n")
    fd_space = _socket.CMSG_LEN(5 * 4)
    while True:
        msg, anc, _, _ = sock.recvmsg(16, fd_space)
        fds = [int.from_bytes(d[i : i + 4], sys.byteorder) for _, _, d in anc for i in range(0, len(d), 4)]
        if msg != b"run\n" or len(fds) != 5:
            os._exit(0)  # the host closed the socket (or broke protocol): the sandbox ends

        def runner(fds=fds):
            sock.close()
            run_program(fds, uid_c, uid_d, not once)

        pid = _fork(runner)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        if once:
            os._exit(0)
        # Only the candidates' uid needs emptying: the driver's ran the tests alone and was reaped.
        why = _after(status)
        sock.sendall(b"dirty " + why.encode() + b"\n" if why else b"ok\n")
        if why:
            os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "once")
