"""Listening sockets, taken before anything else (without importing the server).

``segue serve`` binds its port with ``listen()`` first thing, so a port in use fails in
the time it takes to start Python, before aiohttp is imported or any work is done.
"""

from __future__ import annotations

import socket

BACKLOG = 1024


def listen(host: str, port: int, backlog: int = BACKLOG) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` (port 0: one free port for all).

    ``segue serve`` takes its port with this before anything else, so a port in use
    fails at once, before any work is done. The backlog is larger than aiohttp's 128 so
    that a burst of reconnecting clients (a server restart) is not refused by the kernel.
    Raises OSError (the port is taken, the host unknown).
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # "::" must not also take the IPv4 port
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
