"""Ctrl-C while a node waits in the c10d rendezvous for a node that never comes.

A second process plays the notebook's stop button: once this node's rendezvous store listens
(the wait has begun), it sends SIGINT to this process, which is what ``jupyter_client``'s
``interrupt_kernel`` does to a kernel. The wait must end within seconds instead of the 600 s
join timeout, with no worker, agent thread, listening port or RUNNING run left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import all_runs
from test_distributed import workers
from test_multinode import free_port
from torch import nn

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.distributed.nodes import JOIN_TIMEOUT
from aimodel_kernel.engine.training.entry import train

STOP_BUTTON = textwrap.dedent("""
    import os, signal, socket, sys, time
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the node listens: it is in the rendezvous
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("the rendezvous never started")
    time.sleep(1.5)  # well inside the join loop
    os.kill(pid, signal.SIGINT)
    print(time.time(), flush=True)
""")


def listening(port: int) -> bool:
    """Whether a socket of this machine listens on ``port`` (``/proc/net/tcp*``, state 0A)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


@pytest.mark.slow
def test_ctrl_c_in_the_rendezvous_ends_the_wait_and_leaves_nothing(store, digits):
    X, y = digits
    port = free_port()
    before = workers()
    config = TrainConfig(epochs=1, seed=1, nodes=2, node_rank=0, rdzv=f"127.0.0.1:{port}")
    sender = subprocess.Popen([sys.executable, "-c", STOP_BUTTON, str(os.getpid()), str(port)],
                              stdout=subprocess.PIPE, text=True)
    # a SIGINT that came after train() returned must not end the test session
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        with pytest.raises(InputError, match="stopped while waiting at the rendezvous") as info:
            train(nn.Linear(64, 10), X[:200], y[:200], config)
        ended = time.time()
        out, _ = sender.communicate(timeout=60)
    finally:
        signal.signal(signal.SIGINT, previous)
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    pressed = float(out.split()[-1])
    assert ended - pressed < 5, f"took {ended - pressed:.1f} s (join timeout {JOIN_TIMEOUT} s)"
    assert "\n" not in str(info.value) and "nothing was trained" in str(info.value)

    assert not [t for t in threading.enumerate() if t.name == "aimodel-node"]
    assert workers() <= before
    assert not listening(port)  # the rendezvous store is gone with its port
    with socket.socket() as again:  # and node 0 could host a rendezvous there right away
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
    runs = all_runs(store)
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    assert {r.info.lifecycle_stage for r in runs} == {"deleted"}  # discarded: nothing trained
