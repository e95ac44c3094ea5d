#!/usr/bin/env python3
"""A delay line for the WAN bench: a TCP proxy on loopback that makes a link of RTT_MS round
trip and MBIT megabits per second out of a loopback registry.

    delay_line.py LISTEN_PORT TARGET_PORT RTT_MS MBIT

Every connection to 127.0.0.1:LISTEN_PORT is forwarded to 127.0.0.1:TARGET_PORT. Each
direction holds every chunk it reads for RTT/2 before sending it on, and all connections
share one token bucket per direction of MBIT, as the tools' connections share one link. A
connection holds at most WINDOW bytes in flight per direction, so a sender feels the link's
pace (its writes block) instead of filling the proxy's memory. Prints "ready" once listening.
"""

import collections
import socket
import sys
import threading
import time

CHUNK = 16 * 1024
WINDOW = 4 * 1024 * 1024


class Bucket:
    """A token bucket of `rate` bytes per second, shared by the connections of a direction.

    It holds up to DEPTH seconds of credit: a sender woken late by the scheduler catches up
    instead of losing the time, so one connection gets the whole rate as a real link gives it
    (without the credit, oversleeping cost a lone stream a fifth of the bandwidth while several
    streams covered for one another).
    """

    DEPTH = 0.005

    def __init__(self, rate):
        self.rate = rate
        self.lock = threading.Lock()
        self.free_at = time.monotonic()

    def take(self, n):
        """Waits until `n` bytes may go: the link is busy until free_at."""
        with self.lock:
            now = time.monotonic()
            start = max(now - self.DEPTH, self.free_at)
            self.free_at = start + n / self.rate
            wait = self.free_at - now
        if wait > 0:
            time.sleep(wait)


class Pipe:
    """One direction of one connection: chunks read, held for the delay, then sent."""

    def __init__(self, source, sink, delay, bucket):
        self.source, self.sink, self.delay, self.bucket = source, sink, delay, bucket
        self.queue = collections.deque()
        self.held = 0
        self.ready = threading.Condition()
        self.done = False

    def read(self):
        try:
            while True:
                data = self.source.recv(CHUNK)
                with self.ready:
                    while self.held >= WINDOW:
                        self.ready.wait()
                    self.queue.append((time.monotonic() + self.delay, data))
                    self.held += len(data)
                    self.ready.notify_all()
                if not data:
                    return
        except OSError:
            with self.ready:
                self.queue.append((time.monotonic(), b""))
                self.ready.notify_all()

    def write(self):
        try:
            while True:
                with self.ready:
                    while not self.queue:
                        self.ready.wait()
                    due, data = self.queue.popleft()
                    self.held -= len(data)
                    self.ready.notify_all()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if not data:
                    self.sink.shutdown(socket.SHUT_WR)
                    return
                self.bucket.take(len(data))
                self.sink.sendall(data)
        except OSError:
            pass


def serve(listen_port, target_port, rtt_ms, mbit):
    delay = rtt_ms / 2000.0
    rate = mbit * 1e6 / 8
    up, down = Bucket(rate), Bucket(rate)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for pipe in (Pipe(client, server, delay, up), Pipe(server, client, delay, down)):
            threading.Thread(target=pipe.read, daemon=True).start()
            threading.Thread(target=pipe.write, daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
