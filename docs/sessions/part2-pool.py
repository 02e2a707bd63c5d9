"""Part 2, chapter 4: the pool grows under five clients, then shrinks by exit_delay."""

import socket

from sessions import Recording


def record(rec: Recording) -> None:
    server = rec.start("grow", "python docs/examples/layer2/step04_pool.py 8024 --exit-delay 1",
                       port=8024)
    server.wait_for(r"stats total=1 idle=1")
    clients = []
    for count in range(1, 5):  # four clients, each greeted by a worker it keeps busy
        client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert client.recv(100).startswith(b"worker ")
        clients.append(client)
        if count < 4:
            server.wait_for(rf"stats total={count + 1} idle=1 busy={count}")
    server.wait_for(r"stats total=4 idle=0 busy=4")
    fifth = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    fifth.settimeout(0.5)
    try:  # no greeting: it waits in the backlog
        assert fifth.recv(100) == b"", "the fifth client was served"
    except TimeoutError:
        pass
    fifth.settimeout(10)
    server.into("shrink")
    clients[1].close()
    assert fifth.recv(100).startswith(b"worker ")  # the freed worker takes it at once
    server.wait_for(r"stats total=4 idle=0 busy=4")
    for idle, client in enumerate([clients[0], *clients[2:], fifth], start=1):
        client.close()
        server.wait_for(rf"stats total=4 idle={idle} ")
    server.wait_for(r"stats total=1 idle=1 busy=0")
    server.into(None)
    server.stop()
