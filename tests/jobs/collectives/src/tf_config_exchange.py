"""What a TensorFlow worker relies on, without TensorFlow: TF_CONFIG names the whole cluster and this task,
and every worker can reach every other at the address TF_CONFIG gives it.

Each worker listens at its own address and connects to each of the others (trying again until they listen),
says who it is, and waits for the answer; it prints one line per peer it reached and per peer that reached it.
"""

import json
import os
import socket
import threading
import time

DEADLINE = time.monotonic() + 60

config = json.loads(os.environ["TF_CONFIG"])
workers = config["cluster"]["worker"]
task = config["task"]
me = task["index"]
assert task["type"] == "worker", task
assert me == int(os.environ["RANK"]), (me, os.environ["RANK"])
assert 0 <= me < len(workers) and len(set(workers)) == len(workers), workers
print(f"worker {me} of {len(workers)}: cluster {','.join(workers)}", flush=True)


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def answer(server: socket.socket, peers: int, heard: list[str]) -> None:
    """Accept one connection from each other worker: read who it is, answer with who this is."""
    while len(heard) < peers:
        connection, _ = server.accept()
        with connection, connection.makefile("rw") as stream:
            heard.append(stream.readline().strip())
            stream.write(f"worker {me}\n")
            stream.flush()


def call(peer: int) -> str:
    """Connect to worker `peer` (trying again while it does not listen yet), introduce this one, read its answer."""
    while True:
        try:
            with socket.create_connection(address(workers[peer]), timeout=5) as connection, \
                    connection.makefile("rw") as stream:
                stream.write(f"worker {me}\n")
                stream.flush()
                return stream.readline().strip()
        except (ConnectionRefusedError, ConnectionResetError):
            if time.monotonic() > DEADLINE:
                raise
            time.sleep(0.2)


server = socket.create_server(address(workers[me]))
server.settimeout(max(1.0, DEADLINE - time.monotonic()))
heard: list[str] = []
listener = threading.Thread(target=answer, args=(server, len(workers) - 1, heard), daemon=True)
listener.start()
for peer in range(len(workers)):
    if peer != me:
        reply = call(peer)
        assert reply == f"worker {peer}", (peer, reply)
        print(f"worker {me} reached worker {peer} at {workers[peer]}", flush=True)
listener.join(max(0.0, DEADLINE - time.monotonic()))
assert not listener.is_alive() and len(heard) == len(workers) - 1, heard
for who in sorted(heard):
    print(f"worker {me} was reached by {who}", flush=True)
server.close()
