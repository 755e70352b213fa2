#!/usr/bin/python3
"""A NOTIFY_SOCKET as systemd has it: an AF_UNIX datagram socket. Prints one JSON line per
message ({"t": ms since epoch, "pid": sender, "msg": text}) and closes any file descriptor
passed with it, which is how systemd answers systemd-notify's barrier (BARRIER=1)."""
import array, json, os, socket, sys, time

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"t": time.time() * 1000, "pid": os.getpid(), "msg": "LISTENING"}), flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(data[0:4], "little")
    print(json.dumps({"t": time.time() * 1000, "pid": pid, "msg": msg.decode(errors="replace")}), flush=True)
