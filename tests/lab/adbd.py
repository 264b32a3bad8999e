#!/usr/bin/env python3
"""LAB STAND-IN of Android's adbd (the BOARD side of adb), over TCP only.

This is not Google's adbd and not Rockchip's: it is a small re-implementation, written for the board lab
from AOSP's published protocol description (protocol.txt, SERVICES.TXT, SYNC.TXT and the shell protocol),
so that the REAL PC side -- the adb 1.0.40 client/server bundled inside Rockchip's rknn-toolkit2 wheel --
can talk to an emulated board the way it talks to a real one over network adb (`adb connect IP:5555`).

Runs on a lab board (aarch64 Debian, python3.11, standard library only, as root) or anywhere else:

    python3 adbd.py --port 5555 --log /var/log/adbd-lab.log [--bind 0.0.0.0]

What it serves (one TCP connection = one adb transport; no authentication, no TLS, no USB):
  * CNXN handshake; the banner is `device::ro.product.name=…;ro.product.model=…;ro.product.device=…;
    features=…` (default features: shell_v2,stat_v2).
  * streams: OPEN / OKAY / WRTE / CLSE with adb's one-write-in-flight flow control, both directions.
  * `shell:CMD` (raw, stdout+stderr merged, no exit code), `shell,v2,…:CMD` (shell protocol v2: stdin,
    stdout, stderr, exit code, close-stdin packets), `exec:CMD` (raw). `CMD` runs as `/bin/sh -c CMD`;
    an empty command runs `/bin/sh -i`. No pty is ever allocated (a pty request is logged and served raw).
    When the PC closes a shell stream first, the command's process group gets SIGHUP, as it would from a
    pty hangup (so `nohup …` survives, like on a real board).
  * `sync:`: STAT, STA2, LST2, LIST, SEND (files and symlinks, parent directories created), RECV, QUIT.
  * `root:` -> "adbd is already running as root\n"; `unroot:` -> "adbd not running as root\n" (nothing
    changes: this process runs as whoever started it).
  * `localabstract:NAME`, `localfilesystem:PATH`, `localreserved:NAME` (/dev/socket/NAME), `local:NAME`
    (tried as the abstract socket @NAME first, then /dev/socket/NAME: Rockchip's rknn_server, whose own
    socket code spells its listening socket `local:transfer_proxy`, listens on @transfer_proxy), and
    `tcp:PORT` / `tcp:HOST:PORT`: connect there on the board and relay bytes both ways. This is what
    `adb forward LOCAL REMOTE` opens on the device.
  * anything else (`reverse:`, `framebuffer:`, `reboot:`, …) is refused (CLSE), and logged.
  * `--map-path FROM=TO` (repeatable; a LAB ADAPTATION, not adbd behaviour): FROM is replaced by TO in
    shell/exec command lines and at the start of sync paths, and each replacement is logged (`map`). The lab
    uses `--map-path /proc/device-tree=/sys/firmware/devicetree/base`: an emulated board's /proc is the
    host kernel's, which has no device tree, while the board's DT lives at /sys/firmware/devicetree/base
    (what /proc/device-tree links to on a real board), and rknn-toolkit2 runs
    `adb shell cat /proc/device-tree/compatible` to learn the SoC.

Every transport and every service request is logged, one line each, to --log: that log is how one learns
what a PC tool (the toolkit) asks of a board.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import signal
import socket
import stat
import struct
import sys

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453
NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE",
         A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS"}

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD = 256 * 1024          # what this daemon accepts; the transport uses min(ours, the host's)
HEADER = struct.Struct("<6I")
SYNC_DATA_MAX = 64 * 1024

# shell protocol v2 packet ids
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINSIZE = range(6)


class Log:
    def __init__(self, path: str | None):
        self.path = path
        self.file = open(path, "a", buffering=1, encoding="utf-8") if path else None

    def __call__(self, peer: str, event: str, detail: str = "") -> None:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        line = f"{now} {peer} {event}" + (f" {detail}" if detail else "")
        if self.file:
            self.file.write(line + "\n")
        else:
            print(line, file=sys.stderr, flush=True)


class StreamClosed(Exception):
    pass


class Stream:
    """One adb stream on the board side: inbound bytes (WRTE from the PC, acknowledged with OKAY as
    they are taken) and outbound bytes (our WRTE, at most one unacknowledged at a time)."""

    def __init__(self, transport: "Transport", local_id: int, remote_id: int):
        self.t = transport
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.buffer = b""
        self.eof = False
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.closed = False            # either side closed
        self.closed_by_peer = False
        self.peer_gone = asyncio.Event()
        self.task: asyncio.Task | None = None

    # ---- inbound
    def feed(self, data: bytes) -> None:
        self.inbound.put_nowait(data)

    def feed_eof(self) -> None:
        self.inbound.put_nowait(None)

    async def read_chunk(self) -> bytes:
        """Next bytes the PC sent (b"" at end): what is buffered, else the next WRTE payload."""
        if self.buffer:
            data, self.buffer = self.buffer, b""
            return data
        if self.eof:
            return b""
        data = await self.inbound.get()
        if data is None:
            self.eof = True
            return b""
        self.t.send(A_OKAY, self.local_id, self.remote_id)
        return data

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if self.eof:
                raise StreamClosed()
            data = await self.inbound.get()
            if data is None:
                self.eof = True
                raise StreamClosed()
            self.t.send(A_OKAY, self.local_id, self.remote_id)
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    # ---- outbound
    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        step = self.t.max_payload
        for start in range(0, len(view), step):
            await self.can_write.wait()
            if self.closed:
                raise StreamClosed()
            self.can_write.clear()
            self.t.send(A_WRTE, self.local_id, self.remote_id, bytes(view[start:start + step]))

    def okayed(self) -> None:
        self.can_write.set()

    def close(self) -> None:
        """Close from our side: tell the PC (once)."""
        if not self.closed:
            self.closed = True
            self.t.send(A_CLSE, self.local_id, self.remote_id)
            self.t.forget(self)
        self.can_write.set()

    def peer_closed(self) -> None:
        self.closed = self.closed_by_peer = True
        self.peer_gone.set()
        self.feed_eof()
        self.can_write.set()


class Transport:
    def __init__(self, daemon: "Daemon", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.d = daemon
        self.reader = reader
        self.writer = writer
        host, port = writer.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        self.version = A_VERSION_MIN
        self.max_payload = 4096
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.online = False

    def log(self, event: str, detail: str = "") -> None:
        self.d.log(self.peer, event, detail)

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        if self.writer.is_closing():
            return
        # from A_VERSION_SKIP_CHECKSUM on, neither side computes or checks the payload checksum
        checksum = 0 if self.version >= A_VERSION_SKIP_CHECKSUM else sum(data) & 0xFFFFFFFF
        self.writer.write(HEADER.pack(cmd, arg0, arg1, len(data), checksum, cmd ^ 0xFFFFFFFF) + data)

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.local_id, None)

    async def run(self) -> None:
        self.log("connected")
        try:
            while True:
                header = await self.reader.readexactly(HEADER.size)
                cmd, arg0, arg1, length, _checksum, magic = HEADER.unpack(header)
                if magic != cmd ^ 0xFFFFFFFF or length > 16 * 1024 * 1024:
                    self.log("protocol-error", f"bad header {header.hex()}")
                    break
                data = await self.reader.readexactly(length) if length else b""
                await self.dispatch(cmd, arg0, arg1, data)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # log it: the log is the only window on a board-side failure
            self.log("error", f"transport {type(exc).__name__}: {exc}")
        finally:
            for stream in list(self.streams.values()):
                stream.peer_closed()
            self.streams.clear()
            self.writer.close()
            self.log("disconnected")

    async def dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            for stream in list(self.streams.values()):
                stream.peer_closed()
            self.streams.clear()
            self.version = min(arg0, A_VERSION_SKIP_CHECKSUM) if arg0 >= A_VERSION_MIN else A_VERSION_MIN
            self.max_payload = max(4096, min(arg1, MAX_PAYLOAD))
            self.online = True
            banner = self.d.banner()
            host_banner = data.rstrip(b"\0").decode("utf-8", "replace")
            self.log("cnxn", f"host-version=0x{arg0:08x} host-max-payload={arg1} "
                             f"host-banner={json.dumps(host_banner)} "
                             f"reply={json.dumps(banner)}")
            self.send(A_CNXN, self.version, MAX_PAYLOAD, banner.encode())
            return
        if not self.online:
            self.log("ignored", f"{NAMES.get(cmd, hex(cmd))} before CNXN")
            return
        if cmd == A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            local_id = self.next_id
            self.next_id += 1
            stream = Stream(self, local_id, arg0)
            handler = self.d.route(service)
            if handler is None:
                self.log("refused", f"stream={local_id} service={json.dumps(service)} reason=unknown-service")
                self.send(A_CLSE, 0, arg0)
                return
            self.log("open", f"stream={local_id} service={json.dumps(service)}")
            self.streams[local_id] = stream
            stream.task = asyncio.create_task(self.serve(stream, handler, service))
        elif cmd == A_WRTE:
            stream = self.streams.get(arg1)
            if stream is not None and not stream.closed:
                stream.feed(data)
        elif cmd == A_OKAY:
            stream = self.streams.get(arg1)
            if stream is not None:
                if stream.remote_id == 0:
                    stream.remote_id = arg0
                stream.okayed()
        elif cmd == A_CLSE:
            stream = self.streams.pop(arg1, None)
            if stream is not None:
                stream.peer_closed()
        else:
            self.log("ignored", f"{NAMES.get(cmd, hex(cmd))} arg0={arg0} arg1={arg1}")

    async def serve(self, stream: Stream, handler, service: str) -> None:
        """Run one service; `handler` answers OKAY itself (after it knows it can serve) or raises."""
        try:
            await handler(stream, service)
        except StreamClosed:
            pass
        except Exception as exc:  # a failing service must not take the transport down
            self.log("error", f"stream={stream.local_id} {type(exc).__name__}: {exc}")
        finally:
            if not stream.closed_by_peer:
                stream.close()
            else:
                self.forget(stream)
            self.log("close", f"stream={stream.local_id} by={'pc' if stream.closed_by_peer else 'board'}")
            try:
                await self.writer.drain()
            except ConnectionError:
                pass


class Daemon:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.log = Log(args.log)

    def mapped(self, stream: "Stream", text: str, prefix_only: bool = False) -> str:
        """The lab's --map-path replacements (see the module docstring), logged."""
        out = text
        for frm, to in self.args.map_path:
            if prefix_only:
                if out == frm or out.startswith(frm.rstrip("/") + "/"):
                    out = to + out[len(frm):]
            else:
                out = out.replace(frm, to)
        if out != text:
            stream.t.log("map", f"stream={stream.local_id} {json.dumps(text)} -> {json.dumps(out)}")
        return out

    def banner(self) -> str:
        a = self.args
        return (f"device::ro.product.name={a.product_name};ro.product.model={a.product_model};"
                f"ro.product.device={a.product_device};features={a.features}")

    def route(self, service: str):
        if service.startswith("shell"):
            head = service.split(":", 1)[0]
            if head == "shell" or head.startswith("shell,"):
                return self.shell
        if service.startswith("exec:"):
            return self.shell
        if service == "sync:":
            return self.sync
        if service in ("root:", "unroot:"):
            return self.root
        for prefix in ("localabstract:", "localfilesystem:", "localreserved:", "local:", "tcp:"):
            if service.startswith(prefix):
                return self.relay
        return None

    # ------------------------------------------------------------------ shell / exec
    async def shell(self, stream: Stream, service: str) -> None:
        t = stream.t
        head, _, command = service.partition(":")
        command = self.mapped(stream, command)
        options = head.split(",")[1:] if head.startswith("shell") else []
        v2 = head.startswith("shell") and "v2" in options and "shell_v2" in self.args.features.split(",")
        if "pty" in options or (not command and "raw" not in options):
            t.log("note", f"stream={stream.local_id} pty requested: served without a pty")
        argv = ["/bin/sh", "-c", command] if command else ["/bin/sh", "-i"]
        env = dict(os.environ)
        for opt in options:
            if opt.startswith("TERM="):
                env["TERM"] = opt[5:]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if v2 else asyncio.subprocess.STDOUT,
            start_new_session=True, env=env, cwd="/")
        t.send(A_OKAY, stream.local_id, stream.remote_id)

        async def pump(pipe: asyncio.StreamReader, packet_id: int) -> None:
            while True:
                data = await pipe.read(SYNC_DATA_MAX)
                if not data:
                    return
                if v2:
                    data = struct.pack("<BI", packet_id, len(data)) + data
                await stream.write(data)

        async def feed_stdin() -> None:
            buf = b""
            try:
                while True:
                    chunk = await stream.read_chunk()
                    if not chunk:
                        break
                    if not v2:
                        proc.stdin.write(chunk)
                        await proc.stdin.drain()
                        continue
                    buf += chunk
                    while len(buf) >= 5:
                        packet_id, length = struct.unpack_from("<BI", buf)
                        if len(buf) < 5 + length:
                            break
                        payload, buf = buf[5:5 + length], buf[5 + length:]
                        if packet_id == SHELL_STDIN:
                            proc.stdin.write(payload)
                            await proc.stdin.drain()
                        elif packet_id == SHELL_CLOSE_STDIN:
                            proc.stdin.close()
            except (ConnectionError, StreamClosed):
                pass
            finally:
                if not proc.stdin.is_closing():
                    proc.stdin.close()

        stdin_task = asyncio.create_task(feed_stdin())
        pumps = [pump(proc.stdout, SHELL_STDOUT)]
        if v2:
            pumps.append(pump(proc.stderr, SHELL_STDERR))
        output = asyncio.gather(*pumps)
        peer_gone = asyncio.create_task(stream.peer_gone.wait())
        await asyncio.wait({output, peer_gone}, return_when=asyncio.FIRST_COMPLETED)
        if stream.closed_by_peer and (not output.done() or output.cancelled() or output.exception()):
            t.log("hangup", f"stream={stream.local_id} pid={proc.pid} closed by the PC: SIGHUP to its group")
            try:
                os.killpg(proc.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            output.cancel()
            stdin_task.cancel()
            peer_gone.cancel()
            asyncio.create_task(proc.wait())   # reap whenever it ends
            raise StreamClosed()
        peer_gone.cancel()
        output.result()
        code = await proc.wait()
        code = code if code >= 0 else 128 - code
        stdin_task.cancel()
        t.log("exit", f"stream={stream.local_id} code={code}")
        if v2:
            await stream.write(struct.pack("<BIB", SHELL_EXIT, 1, code & 0xFF))

    # ------------------------------------------------------------------ root
    async def root(self, stream: Stream, service: str) -> None:
        stream.t.send(A_OKAY, stream.local_id, stream.remote_id)
        text = "adbd is already running as root\n" if service == "root:" else "adbd not running as root\n"
        await stream.write(text.encode())

    # ------------------------------------------------------------------ socket relay (adb forward)
    async def relay(self, stream: Stream, service: str) -> None:
        t = stream.t
        kind, _, target = service.partition(":")
        try:
            reader, writer, where = await self._connect(kind, target)
        except (OSError, ValueError) as exc:
            t.log("refused", f"stream={stream.local_id} service={json.dumps(service)} reason={json.dumps(str(exc))}")
            stream.closed = True      # CLSE(0, remote) instead of a normal close: the open failed
            t.forget(stream)
            t.send(A_CLSE, 0, stream.remote_id)
            return
        t.log("relay", f"stream={stream.local_id} to={json.dumps(where)}")
        t.send(A_OKAY, stream.local_id, stream.remote_id)

        async def board_to_pc() -> None:
            while True:
                data = await reader.read(t.max_payload)
                if not data:
                    return
                await stream.write(data)

        async def pc_to_board() -> None:
            while True:
                data = await stream.read_chunk()
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(board_to_pc()), asyncio.create_task(pc_to_board())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    @staticmethod
    async def _connect(kind: str, target: str):
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            host = host or "127.0.0.1"
            reader, writer = await asyncio.open_connection(host, int(port))
            return reader, writer, f"{host}:{port}"
        candidates = {
            "localabstract": ["\0" + target],
            "localfilesystem": [target],
            "localreserved": ["/dev/socket/" + target],
            "local": ["\0" + target, "/dev/socket/" + target],
        }[kind]
        error: OSError | None = None
        for path in candidates:
            try:
                reader, writer = await asyncio.open_unix_connection(path)
                return reader, writer, "@" + path[1:] if path.startswith("\0") else path
            except OSError as exc:
                error = exc
        raise error  # type: ignore[misc]

    # ------------------------------------------------------------------ sync
    async def sync(self, stream: Stream, service: str) -> None:
        t = stream.t
        t.send(A_OKAY, stream.local_id, stream.remote_id)
        while True:
            request = await stream.read_exactly(8)
            rid, length = request[:4], struct.unpack("<I", request[4:])[0]
            if rid == b"QUIT":
                t.log("sync", f"stream={stream.local_id} QUIT")
                return
            if length > 1024 * 1024:
                await self._sync_fail(stream, "path too long")
                return
            path = (await stream.read_exactly(length)).decode("utf-8", "surrogateescape")
            t.log("sync", f"stream={stream.local_id} {rid.decode('ascii', 'replace')} {json.dumps(path)}")
            if rid != b"SEND":
                path = self.mapped(stream, path, prefix_only=True)
            if rid == b"STAT":
                try:
                    st = os.lstat(path)
                    reply = struct.pack("<4sIII", b"STAT", st.st_mode, st.st_size & 0xFFFFFFFF,
                                        int(st.st_mtime) & 0xFFFFFFFF)
                except OSError:
                    reply = struct.pack("<4sIII", b"STAT", 0, 0, 0)
                await stream.write(reply)
            elif rid in (b"STA2", b"LST2"):
                await stream.write(self._stat_v2(rid, path))
            elif rid == b"LIST":
                await self._sync_list(stream, path)
            elif rid == b"SEND":
                if not await self._sync_send(stream, path):
                    return
            elif rid == b"RECV":
                if not await self._sync_recv(stream, path):
                    return
            else:
                await self._sync_fail(stream, f"unknown sync request {rid!r}")
                return

    @staticmethod
    def _stat_v2(rid: bytes, path: str) -> bytes:
        fmt = "<4sIQQIIIIQqqq"
        try:
            st = os.stat(path) if rid == b"STA2" else os.lstat(path)
        except OSError as exc:
            return struct.pack(fmt, rid, exc.errno or 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return struct.pack(fmt, rid, 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
                           st.st_size, int(st.st_atime), int(st.st_mtime), int(st.st_ctime))

    @staticmethod
    async def _sync_fail(stream: Stream, message: str) -> None:
        data = message.encode()
        stream.t.log("sync-fail", f"stream={stream.local_id} {json.dumps(message)}")
        await stream.write(b"FAIL" + struct.pack("<I", len(data)) + data)

    async def _sync_list(self, stream: Stream, path: str) -> None:
        out = []
        try:
            names = [".", ".."] + sorted(os.listdir(path))
        except OSError:
            names = []
        for name in names:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            out.append(struct.pack("<4sIIII", b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF,
                                   int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw)
        out.append(struct.pack("<4sIIII", b"DONE", 0, 0, 0, 0))
        await stream.write(b"".join(out))

    async def _sync_send(self, stream: Stream, spec: str) -> bool:
        path, _, mode_text = spec.rpartition(",")
        if not path:
            path, mode_text = spec, "33188"
        try:
            mode = int(mode_text)
        except ValueError:
            path, mode = spec, 0o100644
        is_link = stat.S_ISLNK(mode)
        temp = f"{path}.adbd-lab-{os.getpid()}-{stream.local_id}"
        error = None
        handle = None
        link_target = b""
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            if not is_link:
                handle = open(temp, "wb")
        except OSError as exc:
            error = f"couldn't create file {path}: {exc.strerror}"
        mtime = 0
        received = 0
        while True:
            header = await stream.read_exactly(8)
            rid, length = header[:4], struct.unpack("<I", header[4:])[0]
            if rid == b"DATA":
                if length > SYNC_DATA_MAX:
                    error = error or "DATA chunk too large"
                    break
                data = await stream.read_exactly(length)
                received += length
                if error:
                    continue
                try:
                    if is_link:
                        link_target += data
                    else:
                        handle.write(data)
                except OSError as exc:
                    error = f"write failed: {exc.strerror}"
            elif rid == b"DONE":
                mtime = length
                break
            else:
                error = error or f"unexpected {rid!r} in SEND"
                break
        if handle is not None:
            handle.close()
        if not error:
            try:
                if is_link:
                    if os.path.lexists(path):
                        os.unlink(path)
                    os.symlink(link_target.decode("utf-8", "surrogateescape"), path)
                else:
                    os.chmod(temp, stat.S_IMODE(mode) or 0o644)
                    if mtime:
                        os.utime(temp, (mtime, mtime))
                    os.replace(temp, path)
            except OSError as exc:
                error = f"couldn't finish {path}: {exc.strerror}"
        if error:
            if os.path.lexists(temp):
                os.unlink(temp)
            await self._sync_fail(stream, error)
            return False
        stream.t.log("sync", f"stream={stream.local_id} SEND done bytes={received} mode={oct(mode)}")
        await stream.write(b"OKAY" + struct.pack("<I", 0))
        return True

    async def _sync_recv(self, stream: Stream, path: str) -> bool:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            await self._sync_fail(stream, f"open failed: {exc.strerror}")
            return False
        sent = 0
        with handle:
            while True:
                data = handle.read(SYNC_DATA_MAX)
                if not data:
                    break
                sent += len(data)
                await stream.write(b"DATA" + struct.pack("<I", len(data)) + data)
        stream.t.log("sync", f"stream={stream.local_id} RECV done bytes={sent}")
        await stream.write(b"DONE" + struct.pack("<I", 0))
        return True

    # ------------------------------------------------------------------ server
    async def serve(self) -> None:
        async def on_connect(reader, writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await Transport(self, reader, writer).run()

        server = await asyncio.start_server(on_connect, self.args.bind, self.args.port, reuse_address=True)
        bound = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        self.log("-", "listening", f"on={bound} pid={os.getpid()} banner={json.dumps(self.banner())}")
        if self.args.ready_file:
            with open(self.args.ready_file, "w") as f:
                f.write(f"{server.sockets[0].getsockname()[1]}\n")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
        self.log("-", "stopped")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Lab stand-in of Android's adbd (board side of adb, TCP only).")
    p.add_argument("--port", type=int, default=5555, help="TCP port (default 5555; 0 picks a free one)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--log", default=None, help="append one line per transport/service request here "
                                               "(default: standard error)")
    p.add_argument("--ready-file", default=None, help="write the bound port here once listening")
    p.add_argument("--product-name", default="rk3588_lab")
    p.add_argument("--product-model", default="rkdeploy_lab_board")
    p.add_argument("--product-device", default="rk3588_lab")
    p.add_argument("--features", default="shell_v2,stat_v2",
                   help="comma-separated features announced in the CNXN banner (shell_v2 and stat_v2 are "
                        "implemented; announce fewer to see how the PC side falls back)")
    p.add_argument("--map-path", action="append", default=[], metavar="FROM=TO",
                   type=lambda v: tuple(v.split("=", 1)) if "=" in v else p.error(f"--map-path {v}: FROM=TO"),
                   help="LAB ADAPTATION: replace FROM by TO in shell commands and sync paths (repeatable)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    asyncio.run(Daemon(parse_args(argv)).serve())


if __name__ == "__main__":
    main()
