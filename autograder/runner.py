"""Execute one notebook and report per-cell results (runs inside the sandbox).

Standalone script: it imports only the standard library, nbformat and nbclient, because the
sandbox mounts this file alone (not the autograder package, not the course).

Protocol: a job is read as JSON from stdin, then stdin is closed (so no copy of the notebook,
with its hidden tests, exists as a file the kernel could read). The result is written as one JSON
document to a private duplicate of stdout; the kernel's own stdout/stderr go to /dev/null.

job = {"notebook": nbformat dict, "cell_timeout": s, "total_timeout": s, "probe": bool,
       "stop_after": cell index or null, "limits": {"text": bytes, "image": bytes, "cell": bytes,
       "notebook": bytes}, "workdir": folder to run in}
result = {"notebook": executed nbformat dict (probe cells removed),
          "cells": {index: {"status": "ok"|"error"|"timeout"|"not_run", "ename", "evalue",
                            "stderr": bool, "truncated": bool}},
          "probes": [{"after": index|None, "before": index|None, "digest", "changed": [...]} ...],
          "baseline": digest|None, "kernel_died": index|None, "stuck": index|None,
          "deadline": index|None, "memory": bool, "output_limit": [indices], "elapsed": s}
"""

import json
import os
import secrets
import sys
import time

PROBE_SETUP = r'''
def __bpkit_probe_install():
    import builtins, hashlib, json, sys, types
    _print, _stdout, _id, _sorted, _vars = builtins.print, sys.stdout, builtins.id, builtins.sorted, builtins.vars
    mods = {"builtins": builtins}
    for name in ("numpy", "numpy.linalg", "bpkit", "bpkit.course.checks"):
        try:
            __import__(name)
            mods[name] = sys.modules[name]
        except Exception:
            pass
    lazy = ("numpy.testing", "bpkit.symbolic", "bpkit.gradcheck")  # fingerprinted once imported
    ip = get_ipython()
    shell_attrs = ("run_cell", "run_cell_async", "run_code", "run_ast_nodes", "showtraceback",
                   "_showtraceback", "showsyntaxerror", "transform_cell", "should_run_async",
                   "_run_cell", "ex", "ev")
    ok_modules = ("IPython", "ipykernel", "matplotlib", "matplotlib_inline", "ipywidgets", "comm")

    def fingerprint():
        fp = {}
        for mname, mod in mods.items():
            for name, val in list(_vars(mod).items()):
                if name.startswith("_") and mname != "builtins":
                    continue
                if isinstance(val, types.FunctionType):
                    fp[mname + "." + name] = [_id(val), _id(val.__code__), _id(val.__defaults__),
                                              _id(val.__kwdefaults__)]
                elif callable(val) or isinstance(val, types.ModuleType):
                    fp[mname + "." + name] = _id(val)
        for drop in ("builtins.input", "builtins.raw_input", "builtins.getpass", "builtins._",
                     "builtins.__", "builtins.___"):
            fp.pop(drop, None)  # ipykernel rebinds these for every execution request
        for attr in shell_attrs:
            fp["IPython.shell." + attr] = [_id(getattr(type(ip), attr, None)),
                                           _id(_vars(ip).get(attr))]
        fp["IPython.custom_exceptions"] = repr(ip.custom_exceptions)
        for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            fp["IPython." + attr] = [_id(x) for x in getattr(ip, attr, [])]
        mgr = ip.input_transformer_manager
        for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
            fp["IPython.input_transformer_manager." + attr] = [_id(x) for x in getattr(mgr, attr, [])]
        foreign = []
        for event, cbs in ip.events.callbacks.items():
            for cb in cbs:
                mod = getattr(cb, "__module__", None) or getattr(type(cb), "__module__", "")
                if not str(mod).split(".")[0] in ok_modules:
                    foreign.append(event)
        fp["IPython.events (callbacks from the notebook)"] = _sorted(foreign)
        fp["sys.displayhook"] = _id(sys.displayhook)
        fp["sys.stdout"] = _id(sys.stdout)
        fp["sys.stderr"] = _id(sys.stderr)
        kernel = getattr(ip, "kernel", None)
        if kernel is not None:
            for attr in ("do_execute", "execute_request", "send_response"):
                fp["kernel." + attr] = [_id(getattr(type(kernel), attr, None)),
                                        _id(_vars(kernel).get(attr))]
            fp["kernel.session.send"] = _id(_vars(kernel.session).get("send"))
        return fp

    ref_codes, ref_funcs = {}, set()

    def learn_bpkit():
        """Code locations of bpkit's module-level functions (their code is original here)."""
        for mname, mod in list(sys.modules.items()):
            if mod is None or not (mname == "bpkit" or mname.startswith("bpkit.")):
                continue
            for val in list(_vars(mod).values()):
                if isinstance(val, types.FunctionType) and str(val.__module__).startswith("bpkit"):
                    co = val.__code__
                    ref_codes.setdefault((co.co_filename, co.co_firstlineno, co.co_name),
                                         val.__module__ + "." + val.__qualname__)
                    ref_funcs.add(_id(val))

    def copies():
        """Functions held by the notebook that run a copy of a bpkit function's code (escapes
        checks.forbidden, which swaps the original's __code__)."""
        found = []

        def look(where, v):
            if isinstance(v, types.FunctionType) and _id(v) not in ref_funcs:
                co = v.__code__
                name = ref_codes.get((co.co_filename, co.co_firstlineno, co.co_name))
                if name:
                    found.append("copy of " + name + " in '" + where + "'")
        for k, v in list(ip.user_ns.items()):
            if k in ip.user_ns_hidden:
                continue
            look(k, v)
            if isinstance(v, types.FunctionType):
                for cell in v.__closure__ or ():
                    try:
                        look(k, cell.cell_contents)
                    except ValueError:
                        pass
                for d in list(v.__defaults__ or ()) + list((v.__kwdefaults__ or {}).values()):
                    look(k, d)
            elif isinstance(v, (list, tuple, dict)):
                items = v.values() if isinstance(v, dict) else v
                for n, x in enumerate(items):
                    if n > 1000:
                        break
                    look(k, x)
        return found

    learn_bpkit()
    base = fingerprint()
    keys = _sorted(base)
    keys0 = list(keys)  # the digest covers these; lazily added modules are compared in `changed`
    user_modules = {}

    def run(tag):
        for name in lazy:
            if name not in mods and name in sys.modules:
                mods[name] = sys.modules[name]
                new = fingerprint()
                for k in new:
                    if k not in base:
                        base[k] = new[k]
                        keys.append(k)
                learn_bpkit()
        cur = fingerprint()
        changed = [k for k in keys if cur.get(k) != base[k]]
        vals = [cur.get(k) for k in keys0]
        ns = ip.user_ns
        for name, val in list(ns.items()):
            if isinstance(val, types.ModuleType) and name not in user_modules:
                user_modules[name] = val
        for name, mod in user_modules.items():
            if ns.get(name) is not mod:
                changed.append("name '" + name + "' (was module " + mod.__name__ + ")")
        changed.extend(copies())
        digest = hashlib.sha256(json.dumps(vals).encode()).hexdigest()
        _print("BPKIT-PROBE " + tag + " " + digest + " " + json.dumps(changed), file=_stdout, flush=True)

    sys.modules["_bpkit_probe"] = types.SimpleNamespace(run=run)
    run("%s")
__bpkit_probe_install()
del __bpkit_probe_install
'''

PROBE_RUN = 'import _bpkit_probe as __bpkit_p; __bpkit_p.run("%s"); del __bpkit_p'


SNAPSHOT_SAVE = r"""
def __bpkit_snapshot():
    import copy, random, sys, types
    ip = get_ipython()
    ns, hidden = ip.user_ns, ip.user_ns_hidden
    plain = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)

    def copy_of(v):
        if isinstance(v, plain):
            return v
        try:
            return copy.deepcopy(v)
        except Exception:
            return v
    frozen = {k: copy_of(v) for k, v in list(ns.items()) if k not in hidden and not k.startswith("_")}
    state = {"random": random.getstate()}
    try:
        import numpy
        state["numpy"] = numpy.random.get_state()
    except Exception:
        pass

    def restore():
        for k in [k for k in ns if k not in hidden and not k.startswith("_") and k not in frozen]:
            del ns[k]
        for k, v in frozen.items():
            ns[k] = copy_of(v)
        random.setstate(state["random"])
        if "numpy" in state:
            numpy.random.set_state(state["numpy"])
    sys.modules["_bpkit_snapshot"] = types.SimpleNamespace(restore=restore)
__bpkit_snapshot()
del __bpkit_snapshot
"""

SNAPSHOT_RESTORE = "import _bpkit_snapshot as __bpkit_s; __bpkit_s.restore(); del __bpkit_s"


def _set_undumpable():
    """Forbid ptrace and /proc/<pid>/fd access to this process from the kernel (same uid)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass


def _size(out):
    if out.get("output_type") == "stream":
        return len(out.get("text", "")), "text"
    data = out.get("data", {}) if out.get("output_type") != "error" else {}
    if out.get("output_type") == "error":
        return len(out.get("evalue", "")) + sum(len(x) for x in out.get("traceback", [])), "text"
    total, kind = 0, "text"
    for mime, val in data.items():
        n = len(val) if isinstance(val, str) else len(json.dumps(val))
        total += n
        if mime.startswith("image/"):
            kind = "image"
    return total, kind


def _limit_kernel_memory(memory_mb):
    """Run the kernel under `prlimit --as`: a kernel spec in the private JUPYTER_DATA_DIR."""
    import shutil

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


def main():
    t_start = time.monotonic()
    job = json.loads(sys.stdin.buffer.read())
    for folder in job.get("makedirs", []):
        os.makedirs(folder, exist_ok=True)
    for src, dst in job.get("copy", []):
        import shutil

        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif os.path.exists(src):
            shutil.copy(src, dst)
    os.chdir(job["workdir"])
    _limit_kernel_memory(job.get("kernel_memory_mb"))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    result_fd = os.dup(1)  # non-inheritable: the kernel never gets it
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _set_undumpable()

    sys.modules.setdefault("rfc3987_syntax", None)  # optional jsonschema helper: 2 s import
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    limits = job["limits"]
    t0 = time.monotonic()
    deadline = t0 + job["total_timeout"]
    nb = nbformat.from_dict(job["notebook"])
    cells = nb.cells
    stop_after = job.get("stop_after")
    use_probe = job.get("probe", False)

    def grade_code(c):
        md = c.get("metadata", {}).get("nbgrader", {})
        return c.cell_type == "code" and md.get("grade") and md.get("grade_id")

    def locked_code(c):
        md = c.get("metadata", {}).get("nbgrader", {})
        return c.cell_type == "code" and md.get("locked") and not md.get("grade")

    # plan: (original index or None for a probe, cell, probe tag)
    plan = []
    nonce = secrets.token_hex(4)
    if use_probe:
        plan.append((None, nbformat.v4.new_code_cell(PROBE_SETUP % ("start-" + nonce)), "start"))
    for i, c in enumerate(cells):
        if stop_after is not None and i > stop_after:
            break
        if use_probe and grade_code(c):
            plan.append(
                (
                    None,
                    nbformat.v4.new_code_cell(PROBE_RUN % ("before:%d-%s" % (i, nonce))),
                    ("before", i),
                )
            )
        plan.append((i, c, None))
        if use_probe and (grade_code(c) or locked_code(c)):
            plan.append(
                (
                    None,
                    nbformat.v4.new_code_cell(PROBE_RUN % ("after:%d-%s" % (i, nonce))),
                    ("after", i),
                )
            )

    class LimitedClient(NotebookClient):
        cell_bytes = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None:
                return out
            n, kind = _size(out)
            limit = limits["image"] if kind == "image" else limits["text"]
            self.cell_bytes += n
            if n > limit or self.cell_bytes > limits["cell"]:
                if outs and outs[-1] is out:
                    outs.pop()
                self.truncated = True
                return None
            return out

    exec_nb = nbformat.v4.new_notebook(metadata=nb.metadata)
    exec_nb.cells = [c for _, c, _ in plan]
    client = LimitedClient(
        exec_nb,
        timeout=job["cell_timeout"],
        allow_errors=True,
        interrupt_on_timeout=False,
        record_timing=False,
        iopub_timeout=4,
        kernel_name="python3",
        shutdown_kernel="immediate",
        resources={"metadata": {"path": job["workdir"]}},
    )
    res = {
        "cells": {},
        "probes": [],
        "baseline": None,
        "kernel_died": None,
        "stuck": None,
        "deadline": None,
        "memory": False,
        "output_limit": [],
        "error": None,
    }
    total_bytes = 0

    variants = job.get("variants") or {}
    res["variants"] = {}
    spent = [0.0]

    def cell_info(status, outs):
        info = {"status": status}
        errors = [o for o in outs if o.get("output_type") == "error"]
        if status == "ok" and errors:
            info["status"] = "error"
        if errors:
            info["ename"] = errors[-1].get("ename", "")
            info["evalue"] = errors[-1].get("evalue", "")[:500]
        info["stderr"] = any(
            o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs
        )
        return info

    def kernel_answers_after_interrupt():
        """After a cell timeout: interrupt the kernel; True if it then runs `pass` within 5 s."""
        client.km.interrupt_kernel()
        ping = nbformat.v4.new_code_cell("pass")
        exec_nb.cells.append(ping)
        client.timeout = 5
        try:
            client.execute_cell(ping, len(exec_nb.cells) - 1)
            return True
        except (CellTimeoutError, DeadKernelError):
            return False
        finally:
            exec_nb.cells.pop()

    def extra(source):
        """Run code outside the notebook's plan (snapshots, wrong-answer variants)."""
        c = nbformat.v4.new_code_cell(source)
        exec_nb.cells.append(c)
        client.timeout = job["cell_timeout"]
        client.cell_bytes, client.truncated = 0, False
        try:
            client.execute_cell(c, len(exec_nb.cells) - 1)
            status = "ok"
        except CellTimeoutError:
            status = "timeout"
        finally:
            exec_nb.cells.pop()
        if status == "timeout" and not kernel_answers_after_interrupt():
            raise DeadKernelError("kernel ignored the interrupt")
        return cell_info(status, c.get("outputs", []))

    def run_variants(orig):
        """Each variant: restore the state before cell `orig`, run its source instead of that
        cell, then the following cells up to v["upto"]; finally restore for the main line."""
        t = time.monotonic()
        extra(SNAPSHOT_SAVE)
        for v in variants[str(orig)]:
            extra(SNAPSHOT_RESTORE)
            vres = {str(orig): extra(v["source"])}
            for j in range(orig + 1, v["upto"] + 1):
                if cells[j].cell_type == "code":
                    vres[str(j)] = extra(cells[j].source)
            res["variants"][v["tag"]] = vres
        extra(SNAPSHOT_RESTORE)
        spent[0] += time.monotonic() - t

    def probe_line(cell):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for line in out.get("text", "").splitlines():
                    if line.startswith("BPKIT-PROBE ") and line.split(" ")[1].endswith(nonce):
                        return line
        return None

    try:
        with client.setup_kernel():
            for k, (orig, cell, tag) in enumerate(plan):
                if cell.cell_type != "code":
                    continue
                if orig is not None:
                    info = res["cells"].setdefault(str(orig), {"status": "not_run"})
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    res["deadline"] = next((o for o, _, _ in plan[k:] if o is not None), None)
                    break
                if orig is not None and str(orig) in variants:
                    run_variants(orig)
                client.timeout = max(1, int(min(job["cell_timeout"], remaining)))
                client.cell_bytes, client.truncated = 0, False
                try:
                    client.execute_cell(cell, k)
                    status = "ok"
                except CellTimeoutError:
                    status = "timeout"
                except DeadKernelError:
                    if orig is not None:
                        info["status"] = "not_run"
                    res["kernel_died"] = (
                        orig if orig is not None else (tag[1] if isinstance(tag, tuple) else 0)
                    )
                    break
                outs = cell.get("outputs", [])
                if orig is None:
                    line = probe_line(cell)
                    entry = {"tag": tag if isinstance(tag, str) else list(tag), "line": line}
                    if line:
                        parts = line.split(" ", 3)
                        entry["digest"] = parts[2]
                        try:
                            entry["changed"] = json.loads(parts[3])
                        except Exception:
                            entry["changed"] = ["garbled probe output"]
                        if tag == "start":
                            res["baseline"] = parts[2]
                    res["probes"].append(entry)
                    cell.outputs = []
                    if status == "timeout":
                        break
                    continue
                errors = [o for o in outs if o.get("output_type") == "error"]
                if status == "ok" and errors:
                    status = "error"
                info["status"] = status
                if errors:
                    info["ename"] = errors[-1].get("ename", "")
                    info["evalue"] = errors[-1].get("evalue", "")[:500]
                    if any(o.get("ename") == "MemoryError" for o in errors):
                        res["memory"] = True
                info["stderr"] = any(
                    o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs
                )
                cell_total = sum(_size(o)[0] for o in outs)
                if client.truncated or total_bytes + cell_total > limits["notebook"]:
                    info["truncated"] = True
                    res["output_limit"].append(orig)
                    if total_bytes + cell_total > limits["notebook"]:
                        cell.outputs = []
                        cell_total = 0
                    cell.outputs.append(
                        nbformat.v4.new_output(
                            "stream",
                            name="stdout",
                            text="[autograder: output over the size limit was removed]\n",
                        )
                    )
                total_bytes += cell_total
                if status == "timeout":
                    info["ename"], info["evalue"] = "Timeout", "cell ran over %s s" % client.timeout
                    # interrupt; if the kernel does not come back, give up on the rest
                    if not kernel_answers_after_interrupt():
                        res["stuck"] = orig
                        break
    except DeadKernelError:
        if res["kernel_died"] is None:
            res["kernel_died"] = 0
    except Exception as exc:  # grader fault: report, do not crash
        res["error"] = "%s: %s" % (type(exc).__name__, str(exc)[:300])

    nb.cells = cells
    for i in range(len(cells)):
        res["cells"].setdefault(str(i), {"status": "not_run"})
    # copy executed outputs back onto the original cells
    for orig, cell, _ in plan:
        if orig is not None and cell.cell_type == "code":
            cells[orig] = cell
    res["notebook"] = nb
    res["elapsed"] = time.monotonic() - t0
    res["main_elapsed"] = res["elapsed"] - spent[0]
    res["runner_elapsed"] = time.monotonic() - t_start
    data = json.dumps(res).encode()
    with os.fdopen(result_fd, "wb") as f:
        f.write(data)
    os._exit(0)  # skip interpreter teardown (zmq contexts, threads): the result is out


if __name__ == "__main__":
    main()
