"""Runs inside the sandbox: starts the kernel, runs the notebook's cells on command, and answers
the evaluator's data requests through the agent. Holds no test code and no expected value.

    python -m bpkit_sandbox.driver      (PYTHONPATH has the folder holding this package)

Protocol: JSON lines. The first line on stdin is the job; the driver answers on a private copy of
stdout (the kernel's own stdout/stderr go to /dev/null) with {"event": "ready"} once the kernel
is up, then one reply per command:

    {"cmd": "run_until", "index": k}  run the job's cells with index < k -> {"event": "reached"}
    {"cmd": "agent", "request": {...}} ask the agent (wire.py data)   -> {"event": "agent"}
    {"cmd": "exec", "source": "..."}  run extra code (selfcheck only)  -> {"event": "exec"}
    {"cmd": "finish"}                 run the remaining cells, stop    -> {"event": "done"}

job = {"cells": [{"index": i, "source": s}], "cell_timeout": s, "limits": {...},
       "workdir": path, "makedirs": [...], "copy": [[src, dst]], "kernel_memory_mb": n or null}
A cell's status comes from the kernel's execute_reply ("ok", "error", "aborted"), as nbgrader's.
"""

import json
import os
import shutil
import sys
import time

AGENT = (__package__ or "bpkit_sandbox") + ".agent"  # importable in the kernel under this name
READY_TIMEOUT = 60
INTERRUPT_GRACE = 5
IDLE_GRACE = 2  # after the reply, the idle status may have been lost with an oversized message
RECEIVE_FACTOR = 10  # a cell may receive this many times its output cap before it is cut off


class Frames:
    def __init__(self, fin, fout):
        self.fin, self.fout = fin, fout

    def read(self):
        line = self.fin.readline()
        if not line:
            raise EOFError
        return json.loads(line)

    def write(self, obj):
        self.fout.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        self.fout.flush()


def _size(content, msg_type):
    """Bytes of an output message's payload (over the cap when it cannot even be measured)."""
    try:
        if msg_type == "stream":
            return len(content.get("text", "")), "text"
        if msg_type == "error":
            return len(content.get("evalue", "")) + sum(
                len(x) for x in content.get("traceback", [])
            ), "text"
        total, kind = 0, "text"
        for mime, val in (content.get("data") or {}).items():
            total += len(val) if isinstance(val, str) else len(json.dumps(val))
            if mime.startswith("image/"):
                kind = "image"
        return total, kind
    except (RecursionError, TypeError, ValueError, AttributeError):
        return 1 << 40, "text"


class Run:
    """Outputs and verdict of one execute_request."""

    def __init__(self):
        self.outputs, self.status, self.ename, self.evalue = [], "not_run", "", ""
        self.stderr = self.truncated = self.timed_out = False
        self.received, self.kept = 0, 0
        self.expressions = None
        self.clear_pending = False

    def info(self):
        out = {"status": self.status, "stderr": self.stderr}
        if self.truncated:
            out["truncated"] = True
        if self.ename:
            out["ename"], out["evalue"] = self.ename, self.evalue[:500]
        return out


class Kernel:
    def __init__(self, job):
        from jupyter_client import KernelManager

        self.limits = job["limits"]
        self.notebook_bytes = 0
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=job["workdir"])
        self.kc = self.km.client()
        import zmq

        # one message can never be bigger than the notebook's output cap (zmq drops the link)
        self.kc.context.setsockopt(zmq.MAXMSGSIZE, int(self.limits["message"]))
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=READY_TIMEOUT)
        self.dead = False

    def alive(self):
        if not self.dead and not self.km.is_alive():
            self.dead = True
        return not self.dead

    def execute(self, code, timeout, user_expressions=None, silent=False):
        import zmq

        run = Run()
        if not self.alive():
            return run
        msg_id = self.kc.execute(
            code,
            silent=silent,
            store_history=not silent,
            user_expressions=user_expressions or {},
            allow_stdin=False,
            stop_on_error=False,
        )
        poller = zmq.Poller()
        poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        poller.register(self.kc.shell_channel.socket, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        reply = idle = False
        interrupted_at = replied_at = None
        while not (reply and idle):
            now = time.monotonic()
            if replied_at is not None and now > replied_at + IDLE_GRACE:
                run.truncated = True  # messages were lost (over the size cap): stop waiting
                break
            if interrupted_at is None and now > deadline:
                run.timed_out = True
                self.km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE:
                self.kill()  # ignores SIGINT: nothing more can run in it
                break
            events = dict(poller.poll(200))
            if not events:
                if not self.alive():
                    break
                continue
            if self.kc.shell_channel.socket in events:
                msg = self._get(self.kc.shell_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id:
                    content = msg["content"]
                    run.status = content.get("status", "error")
                    if run.status == "error":
                        run.ename = run.ename or str(content.get("ename", ""))
                        run.evalue = run.evalue or str(content.get("evalue", ""))
                    run.expressions = content.get("user_expressions")
                    reply = True
                    replied_at = time.monotonic()
            if self.kc.iopub_channel.socket in events:
                msg = self._get(self.kc.iopub_channel)
                if msg and msg["parent_header"].get("msg_id") == msg_id:
                    if msg["msg_type"] == "status":
                        idle = idle or msg["content"].get("execution_state") == "idle"
                    else:
                        self._output(run, msg)
        if run.timed_out:
            run.status = "timeout"
            run.ename, run.evalue = "Timeout", "cell ran over %s s" % timeout
        elif not reply:
            run.status = "dead" if self.dead else "error"
        return run

    @staticmethod
    def _get(channel):
        try:
            return channel.get_msg(timeout=0)
        except Exception:  # malformed (e.g. nested too deep to parse): dropped
            return None

    def _output(self, run, msg):
        mt, content = msg["msg_type"], msg["content"]
        size, kind = _size(content, mt)
        run.received += size
        lim = self.limits
        if mt in ("execute_input", "comm_open", "comm_msg", "comm_close"):
            if run.received > lim["cell"] * RECEIVE_FACTOR:
                run.truncated = True
            return
        if mt == "clear_output":
            if content.get("wait"):
                run.clear_pending = True
            else:
                self._clear(run)
            return
        if mt == "stream" and content.get("name") == "stderr":
            run.stderr = True
        if mt == "error":
            run.ename = str(content.get("ename", ""))
            run.evalue = str(content.get("evalue", ""))
        cap = lim["image"] if kind == "image" else lim["text"]
        over = (
            size > cap
            or run.kept + size > lim["cell"]
            or self.notebook_bytes + size > lim["notebook"]
            or run.received > lim["cell"] * RECEIVE_FACTOR
        )
        if over:
            run.truncated = True
            if mt == "error":  # keep the verdict visible, without its traceback
                self._append(
                    run,
                    {
                        "output_type": "error",
                        "ename": run.ename[:200],
                        "evalue": run.evalue[:2000],
                        "traceback": [],
                    },
                    0,
                )
            return
        if run.clear_pending:
            self._clear(run)
        if mt == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for out in run.outputs:
                if out.get("_display_id") == display_id and display_id:
                    run.kept += size
                    self.notebook_bytes += size
                    out["data"] = content.get("data", {})
                    out["metadata"] = content.get("metadata", {})
            return
        if mt == "stream":
            name, text = content.get("name"), str(content.get("text", ""))
            last = run.outputs[-1] if run.outputs else None
            if last and last["output_type"] == "stream" and last["name"] == name:
                last["text"] += text
                run.kept += size
                self.notebook_bytes += size
                return
            out = {"output_type": "stream", "name": name, "text": text}
        elif mt in ("display_data", "execute_result"):
            out = {
                "output_type": mt,
                "data": content.get("data", {}),
                "metadata": content.get("metadata", {}),
            }
            if mt == "execute_result":
                out["execution_count"] = content.get("execution_count")
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id:
                out["_display_id"] = str(display_id)
        elif mt == "error":
            out = {
                "output_type": "error",
                "ename": run.ename,
                "evalue": run.evalue,
                "traceback": [str(x) for x in content.get("traceback", [])][:200],
            }
        else:
            return
        self._append(run, out, size)

    def _append(self, run, out, size):
        run.outputs.append(out)
        run.kept += size
        self.notebook_bytes += size

    def _clear(self, run):
        self.notebook_bytes -= run.kept
        run.outputs, run.kept, run.clear_pending = [], 0, False

    def kill(self):
        self.dead = True
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass


def _public(outputs):
    for out in outputs:
        out.pop("_display_id", None)
    return outputs


def _limit_kernel_memory(memory_mb):
    """Fallback where no cgroup is available: the kernel alone under `prlimit --as`."""
    prlimit = shutil.which("prlimit")
    data_dir = os.environ.get("JUPYTER_DATA_DIR")
    if not (memory_mb and prlimit and data_dir):
        return
    spec_dir = os.path.join(data_dir, "kernels", "python3")
    os.makedirs(spec_dir, exist_ok=True)
    argv = [
        prlimit,
        "--as=%d" % (int(memory_mb) << 20),
        "--",
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": argv, "display_name": "Python 3", "language": "python"}, f)


def _set_undumpable():
    """Forbid ptrace and /proc/<pid>/fd access to this process from the kernel (same uid)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def main():
    frames_in = os.fdopen(os.dup(0), "rb")
    frames_out = os.fdopen(os.dup(1), "wb")  # non-inheritable: the kernel never gets these
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _set_undumpable()
    frames = Frames(frames_in, frames_out)
    job = frames.read()
    for folder in job.get("makedirs", []):
        os.makedirs(folder, exist_ok=True)
    for src, dst in job.get("copy", []):
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif os.path.exists(src):
            shutil.copy(src, dst)
    _limit_kernel_memory(job.get("kernel_memory_mb"))
    sys.modules.setdefault("rfc3987_syntax", None)  # optional jsonschema helper: 2 s import
    t0 = time.monotonic()
    kernel = Kernel(job)
    kernel.execute("import %s" % AGENT, READY_TIMEOUT, silent=True)  # before any student cell
    frames.write({"event": "ready", "seconds": round(time.monotonic() - t0, 3)})
    cells = sorted(job["cells"], key=lambda c: c["index"])
    pos = 0
    infos, outputs = {}, {}
    timeout = job["cell_timeout"]
    state = {"stuck": None, "kernel_died": None, "deadline": None}

    def run_cells(upto):
        nonlocal pos
        while pos < len(cells) and (upto is None or cells[pos]["index"] < upto):
            cell = cells[pos]
            pos += 1
            if not kernel.alive():
                if state["kernel_died"] is None and state["stuck"] is None:
                    state["kernel_died"] = cell["index"]
                continue
            run = kernel.execute(cell["source"], timeout)
            infos[str(cell["index"])] = run.info()
            outputs[str(cell["index"])] = _public(run.outputs)
            if run.status == "dead" and state["kernel_died"] is None:
                state["kernel_died"] = cell["index"]
            if run.timed_out and kernel.dead:
                state["stuck"] = cell["index"]

    while True:
        try:
            cmd = frames.read()
        except (EOFError, ValueError):
            break
        what = cmd.get("cmd")
        if what == "run_until":
            run_cells(cmd["index"])
            frames.write({"event": "reached", "index": cmd["index"], "alive": kernel.alive()})
        elif what == "agent":
            expr = "__import__(%r, fromlist=['serve']).serve(%s)" % (
                AGENT,
                json.dumps(json.dumps(cmd["request"])),
            )
            run = kernel.execute("", cmd.get("timeout", timeout), {"r": expr}, silent=True)
            reply = None
            r = (run.expressions or {}).get("r") if isinstance(run.expressions, dict) else None
            if isinstance(r, dict) and r.get("status") == "ok":
                reply = (r.get("data") or {}).get("text/plain")
            elif isinstance(r, dict):
                run.ename, run.evalue = str(r.get("ename", "")), str(r.get("evalue", ""))
            frames.write(
                {
                    "event": "agent",
                    "reply": reply,
                    "info": run.info(),
                    "outputs": _public(run.outputs),
                    "alive": kernel.alive(),
                }
            )
        elif what == "exec":
            run = kernel.execute(cmd["source"], cmd.get("timeout", timeout))
            frames.write(
                {
                    "event": "exec",
                    "info": run.info(),
                    "outputs": _public(run.outputs),
                    "alive": kernel.alive(),
                }
            )
        elif what == "finish":
            run_cells(None)
            frames.write(
                {
                    "event": "done",
                    "cells": infos,
                    "outputs": outputs,
                    **state,
                    "truncated_bytes": kernel.notebook_bytes,
                }
            )
            break
    kernel.kill()
    os._exit(0)  # skip interpreter teardown (zmq contexts, threads)


if __name__ == "__main__":
    main()
