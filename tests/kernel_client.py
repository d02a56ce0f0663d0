"""Driving a real Jupyter kernel from a test: run code, read its output, press "stop"."""

from __future__ import annotations

import json
import time


def run(client, code: str, timeout: float = 120) -> list[dict]:
    """Execute ``code`` and collect its iopub messages until the kernel is idle again."""
    msg_id = client.execute(code)
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"no reply to {code!r} within {timeout} s")


def text_of(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        content = m["content"]
        if m["msg_type"] == "stream":
            parts.append(content["text"])
        elif m["msg_type"] in ("execute_result", "display_data", "update_display_data"):
            parts.append(content["data"].get("text/plain", ""))
        elif m["msg_type"] == "error":
            parts.append(f"{content['ename']}: {content['evalue']}")
    return "\n".join(parts)


def value(client, expr: str):
    out = text_of(run(client, f"import json; print(json.dumps({expr}))"))
    return json.loads(out.strip().splitlines()[-1])


def interrupt_when(km, client, code: str, marker: str, timeout: float = 120) -> dict:
    """Execute ``code``, press the notebook's stop button (a kernel interrupt) once its output
    shows ``marker``, wait until the kernel is idle, and return the execute reply's content."""
    msg_id = client.execute(code)
    deadline = time.monotonic() + timeout
    seen = False
    while not seen and time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            seen = marker in json.dumps(msg["content"])
    assert seen, f"the output never showed {marker!r}"
    km.interrupt_kernel()
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            break
    return client.get_shell_msg(timeout=30)["content"]
