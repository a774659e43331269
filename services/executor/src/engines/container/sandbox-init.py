# Cordon's in-sandbox init: the first process inside a container-engine sandbox (pid 1 of its pid
# namespace, so it also reaps orphans, and nothing inside can signal it). It runs as the sandbox's unprivileged user under the seccomp
# filter, like the code it runs, and only ever sees the sandbox: its own read-only system view, its
# own /workspace and /tmp. It holds nothing secret.
#
# Protocol: JSON lines on fd 3 (a socket to the host's worker process).
#   host -> init  {"t":"exec","argv":[...],"cwd":p,"env":{...},"proxy":bool,"files":[{"path","data"}],
#                  "private":{"code":{"path","data"},"input":{"path","data"},"result":path},
#                  "outputBytes":n,"cpuSeconds":n,"fileBytes":n,"openFiles":n,"processes":n,
#                  "collect":{"maxFiles":n,"maxFileBytes":n,"maxTotalBytes":n},"resultBytes":n}
#                 {"t":"read"|"list","path":p,"max":n}, {"t":"write","path":p,"data":b64}, {"t":"remove","path":p}
#   init -> host  {"t":"ready"} once, then per exec: {"t":"out","fd":1|2,"data":b64} chunks and
#                 {"t":"exit","code":n|null,"signal":n|null,"output":"ok"|"limit","files":[...],
#                  "result":b64|null,"resultTooLarge":bool}
#                 file operations: {"t":"file","size","data"}, {"t":"entries",...}, {"t":"done"}, {"t":"error"}
# Data is base64 (bytes, not text). The host enforces every limit again from outside.
import base64
import json
import os
import resource
import select
import selectors
import signal
import socket
import stat

CONTROL = 3
WORKSPACE = "/workspace"
# The egress forwarder: ordinary clients reach the host's proxy through HTTP(S)_PROXY on the
# sandbox's own loopback; the forwarder passes every connection on to the proxy's Unix socket.
PROXY_PORT = 3128
PROXY_SOCKET = "/.cordon/proxy.sock"
READ_CHUNK = 65536
# Files past the count limit named in the answer (the rest are left out silently).
OMITTED_NAMED = 16


def send(message):
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        written = os.write(CONTROL, view)
        view = view[written:]


def b64(data):
    return base64.b64encode(data).decode("ascii")


def open_parent(path, create):
    """Opens the directory holding `path` (relative to /workspace) without following symlinks."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError("bad path")
    fd = os.open(WORKSPACE, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_file(path, data, mode=0o644):
    """Writes a file under /workspace; answers whether it is new. Never blocks on a FIFO a command left
    there, never follows a link: a regular file or nothing."""
    fd, name = open_parent(path, True)
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        try:
            out = os.open(name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=fd)
            created = True
        except FileExistsError:
            out = os.open(name, flags, dir_fd=fd)
            created = False
        try:
            if not stat.S_ISREG(os.fstat(out).st_mode):
                raise FileOperationError("PATH_INVALID", path + " is not a regular file")
            os.ftruncate(out, 0)
            write_all(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return created


def write_private(path, data):
    """Writes the code, input and result files outside /workspace, in /.cordon/run (never collected)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def limit(kind, value):
    resource.setrlimit(kind, (value, value))


def start(request, stdin_path):
    """Forks the command: a new session (so it has no terminal), stdio on pipes, rlimits as a floor."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(os.open(stdin_path, os.O_RDONLY), 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.closerange(3, 65536)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            # Processes of the sandbox's user, this init and the forwarder included.
            limit(resource.RLIMIT_NPROC, request["processes"] + 2)
            # SIGXCPU at the soft limit (a CPU timeout in the record); SIGKILL a second later.
            resource.setrlimit(resource.RLIMIT_CPU, (request["cpuSeconds"], request["cpuSeconds"] + 1))
            limit(resource.RLIMIT_FSIZE, request["fileBytes"])
            limit(resource.RLIMIT_NOFILE, request["openFiles"])
            limit(resource.RLIMIT_CORE, 0)
            os.chdir(request["cwd"])
            argv = request["argv"]
            os.execve(argv[0], argv, request["env"])
        except BaseException as error:
            os.write(2, ("cordon: cannot start %s: %s\n" % (request["argv"][0], error)).encode())
        os._exit(127)
    os.close(out_w)
    os.close(err_w)
    return pid, out_r, err_r


forwarder = None


def ensure_forwarder():
    """Starts the egress forwarder unless it runs (a command may have ended it)."""
    global forwarder
    if forwarder is not None:
        try:
            if os.waitpid(forwarder, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            pass
        forwarder = None
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", PROXY_PORT))
        listener.listen(64)
    except OSError:
        # Something of the sandbox holds the port: its clients talk to that instead.
        listener.close()
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.close(CONTROL)
            forward(listener)
        finally:
            os._exit(0)
    listener.close()
    forwarder = pid


def forward(listener):
    """Pipes each connection to the proxy socket and back, in one thread (threads count as tasks)."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    peers = {}

    def drop(sock):
        for end in (sock, peers.pop(sock, None)):
            if end is None:
                continue
            peers.pop(end, None)
            try:
                selector.unregister(end)
            except (KeyError, ValueError):
                pass
            end.close()

    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    upstream.connect(PROXY_SOCKET)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                peers[client] = upstream
                peers[upstream] = client
                selector.register(client, selectors.EVENT_READ)
                selector.register(upstream, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(READ_CHUNK)
            except OSError:
                data = b""
            other = peers.get(sock)
            if not data or other is None:
                drop(sock)
                continue
            try:
                other.sendall(data)
            except OSError:
                drop(sock)


def kill_others():
    """Kills every process of the sandbox but this init (pid 1) and its forwarder, until none is left."""
    me = os.getpid()
    for _ in range(100):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in (1, me, forwarder):
                continue
            found = True
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap()
        if not found:
            return


# Exit statuses of children reaped while sweeping (the command's own may be among them).
reaped = {}


def reap():
    global forwarder
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == forwarder:
            forwarder = None
        else:
            reaped[pid] = status


def wait_for(pid, block):
    """The command's exit status, or None while it runs (whoever reaped it)."""
    if pid in reaped:
        return reaped.pop(pid)
    try:
        waited, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return reaped.pop(pid, 0)
    return status if waited == pid else None


def relay(pid, out_r, err_r, budget):
    """Streams the command's output to the host until it exits; kills it when the budget runs out."""
    open_fds = {out_r: 1, err_r: 2}
    status = None
    over = False
    while open_fds or status is None:
        if status is None:
            status = wait_for(pid, False)
        if status is not None and open_fds:
            # The command is gone; descendants may still hold its pipes. Give them a moment to finish
            # writing, then end them (the command's run is over when the command is).
            ready, _, _ = select.select(list(open_fds), [], [], 0.05)
            if not ready:
                kill_others()
                ready, _, _ = select.select(list(open_fds), [], [], 0)
                if not ready:
                    break
        elif open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], 0.05)
        else:
            ready = []
            select.select([], [], [], 0.005)
        for fd in ready:
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                os.close(fd)
                del open_fds[fd]
                continue
            if len(chunk) > budget:
                chunk = chunk[:budget]
                over = True
            budget -= len(chunk)
            if chunk:
                send({"t": "out", "fd": open_fds[fd], "data": b64(chunk)})
            if over:
                break
        if over:
            break
    for fd in open_fds:
        os.close(fd)
    kill_others()
    if status is None:
        status = wait_for(pid, True)
    reaped.clear()
    return status, over


def collect(limits, inputs):
    """Regular files of /workspace, never following a symlink, new or changed since the inputs went in."""
    files = []
    if limits["maxFiles"] == 0:
        return files
    total = 0
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(WORKSPACE, rel)), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            path = entry.name if not rel else rel + "/" + entry.name
            info = entry.stat(follow_symlinks=False)
            if not clean_name(entry.name):
                # Not UTF-8, or control characters: named (made readable), never read.
                if len(files) < limits["maxFiles"] + OMITTED_NAMED:
                    files.append({"path": readable(path), "size": info.st_size, "omitted": "name"})
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(path)
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if inputs.get(path) == (info.st_ino, info.st_size, info.st_mtime_ns):
                continue
            if len(files) >= limits["maxFiles"]:
                # Past the count, a few more are named so the caller sees what was left out.
                if len(files) < limits["maxFiles"] + OMITTED_NAMED:
                    files.append({"path": path, "size": info.st_size, "omitted": "count"})
                continue
            if info.st_size > limits["maxFileBytes"] or total + info.st_size > limits["maxTotalBytes"]:
                files.append({"path": path, "size": info.st_size, "omitted": "size"})
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = os.read(fd, limits["maxFileBytes"] + 1)
            finally:
                os.close(fd)
            if len(data) > limits["maxFileBytes"] or total + len(data) > limits["maxTotalBytes"]:
                files.append({"path": path, "size": len(data), "omitted": "size"})
                continue
            total += len(data)
            files.append({"path": path, "size": len(data), "data": b64(data)})
    return files


def clean_name(name):
    """A file name that travels as text: valid UTF-8, no control characters (C0, DEL, C1)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)


def readable(path):
    """The path with undecodable bytes and control characters replaced by U+FFFD."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join("\ufffd" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def read_result(path, cap):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None, False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, False
        data = os.read(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        return None, True
    return b64(data), False


def snapshot():
    """Every regular file of /workspace as (inode, size, mtime): what a command found there."""
    seen = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(WORKSPACE, rel)))
        except OSError:
            continue
        for entry in entries:
            path = entry.name if not rel else rel + "/" + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                stack.append(path)
            elif stat.S_ISREG(info.st_mode):
                seen[path] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return seen


def execute(request):
    for item in request["files"]:
        write_file(item["path"], base64.b64decode(item["data"]))
    # Files the command finds (inputs, and in a session what earlier commands left) are reported only
    # if it changes them.
    inputs = snapshot() if os.path.isdir(WORKSPACE) else {}
    private = request["private"]
    for name in ("code", "input"):
        write_private(private[name]["path"], base64.b64decode(private[name]["data"]))
    try:
        os.unlink(private["result"])
    except FileNotFoundError:
        pass
    if request.get("proxy"):
        ensure_forwarder()
    pid, out_r, err_r = start(request, "/dev/null")
    status, over = relay(pid, out_r, err_r, request["outputBytes"])
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    result, result_too_large = read_result(private["result"], request["resultBytes"])
    send(
        {
            "t": "exit",
            "code": code,
            "signal": sig,
            "output": "limit" if over else "ok",
            "files": collect(request["collect"], inputs),
            "result": result,
            "resultTooLarge": result_too_large,
        }
    )


def harden():
    """Before anything of the command runs: not dumpable (so the sandbox's user, which the init shares,
    cannot open /proc/1/mem or ptrace-like files to rewrite it: they become root's), and no descriptor
    but stdio and the control socket (whatever the host process had open stays outside)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_DUMPABLE = 4
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    os.closerange(CONTROL + 1, 65536)


class FileOperationError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def file_error(error, path):
    if isinstance(error, FileNotFoundError):
        return FileOperationError("FILE_NOT_FOUND", "no file at " + path)
    if isinstance(error, IsADirectoryError):
        return FileOperationError("IS_DIRECTORY", path + " is a directory")
    if isinstance(error, NotADirectoryError):
        return FileOperationError("NOT_DIRECTORY", "a parent of " + path + " is not a directory")
    if getattr(error, "errno", None) == 28:  # ENOSPC
        return FileOperationError("QUOTA_EXCEEDED", "the workspace is full")
    if getattr(error, "errno", None) == 40:  # ELOOP: a symlink where a file or directory was expected
        return FileOperationError("PATH_INVALID", path + " passes through a symbolic link")
    if isinstance(error, ValueError):
        return FileOperationError("PATH_INVALID", "invalid path")
    return FileOperationError("FILE_FAILED", str(getattr(error, "strerror", None) or error)[:200])


def read_operation(request):
    """A regular file's content, never following a symlink on the way."""
    path = request["path"]
    try:
        fd, name = open_parent(path, False)
        try:
            out = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            info = os.fstat(out)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError()
            if not stat.S_ISREG(info.st_mode):
                raise FileOperationError("PATH_INVALID", path + " is not a regular file")
            if info.st_size > request["max"]:
                raise FileOperationError("FILE_TOO_LARGE", path + " is larger than " + str(request["max"]) + " bytes")
            data = os.read(out, request["max"] + 1)
        finally:
            os.close(out)
    except FileOperationError:
        raise
    except (OSError, ValueError) as error:
        raise file_error(error, path)
    if len(data) > request["max"]:
        raise FileOperationError("FILE_TOO_LARGE", path + " is larger than " + str(request["max"]) + " bytes")
    return {"t": "file", "size": len(data), "data": b64(data)}


def write_operation(request):
    path = request["path"]
    try:
        created = write_file(path, base64.b64decode(request["data"]))
    except FileOperationError:
        raise
    except (OSError, ValueError) as error:
        raise file_error(error, path)
    return {"t": "done", "created": created}


def list_operation(request):
    path = request["path"]
    try:
        if path == "":
            fd = os.open(WORKSPACE, os.O_RDONLY | os.O_DIRECTORY)
        else:
            parent, name = open_parent(path, False)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            finally:
                os.close(parent)
        try:
            entries = []
            with os.scandir(fd) as listing:
                for entry in listing:
                    info = entry.stat(follow_symlinks=False)
                    kind = "directory" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
                    name = entry.name if clean_name(entry.name) else readable(entry.name)
                    entries.append({"name": name, "type": kind, "size": info.st_size if kind == "file" else 0})
                    if len(entries) >= request["max"]:
                        break
        finally:
            os.close(fd)
    except (OSError, ValueError) as error:
        raise file_error(error, path or "/workspace")
    entries.sort(key=lambda e: e["name"])
    return {"t": "entries", "entries": entries}


def remove_operation(request):
    path = request["path"]
    try:
        parent, name = open_parent(path, False)
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                remove_tree(parent, name)
            else:
                os.unlink(name, dir_fd=parent)
        finally:
            os.close(parent)
    except (OSError, ValueError) as error:
        raise file_error(error, path)
    return {"t": "done", "created": False}


def remove_tree(parent, name):
    """Removes a directory tree without recursion (a tree of any depth) and without following links:
    every directory is opened with O_NOFOLLOW relative to its parent's descriptor."""
    stack = [(parent, name, None)]
    try:
        while stack:
            dir_parent, dir_name, fd = stack[-1]
            if fd is None:
                fd = os.open(dir_name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_parent)
                stack[-1] = (dir_parent, dir_name, fd)
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                stack.append((fd, child, None))
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(dir_name, dir_fd=dir_parent)
    finally:
        for _, _, fd in stack:
            if fd is not None:
                os.close(fd)


FILE_OPERATIONS = {
    "read": read_operation,
    "write": write_operation,
    "list": list_operation,
    "remove": remove_operation,
}


def main():
    harden()
    # As the namespace's first process the init gets only signals it handles: it handles none.
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    send({"t": "ready"})
    pending = bytearray()
    while True:
        chunk = os.read(CONTROL, READ_CHUNK)
        if not chunk:
            return
        searched = len(pending)
        pending += chunk
        while True:
            end = pending.find(b"\n", searched)
            if end < 0:
                break
            line = bytes(pending[:end])
            del pending[: end + 1]
            searched = 0
            request = json.loads(line)
            kind = request.get("t")
            if kind == "exec":
                try:
                    execute(request)
                except Exception as error:  # noqa: BLE001 - say why, rather than leave the host waiting
                    send({"t": "error", "code": "EXEC_FAILED", "message": str(error)[:200]})
            elif kind in FILE_OPERATIONS:
                try:
                    send(FILE_OPERATIONS[kind](request))
                except FileOperationError as error:
                    send({"t": "error", "code": error.code, "message": error.message})
                except Exception as error:  # noqa: BLE001 - the init must outlive any one operation
                    send({"t": "error", "code": "FILE_FAILED", "message": str(error)[:200]})
            elif kind == "quit":
                return


if __name__ == "__main__":
    main()
