"""Plain mpyc inference: the script a user writes from mpyc's demos (comparison baseline only, issue 17).

    python benchmarks/private_inference/plain_mpyc.py JOBDIR -M3

``-M3`` makes mpyc start the two other parties as local processes itself. JOBDIR holds ``spec.json`` (public:
the layer list and the rows' shape), ``weights.npz`` (read by party 0, the model owner) and ``rows.npy``
(read by party 1, the client). mpyc's defaults throughout: ``SecFxp()`` (32-bit, 16 fractional bits),
``mpc.input`` / ``@`` / ``*`` / ``np_argmax`` on secure arrays; only the predicted classes are opened, to the
client, as in modelshield's ``mpc-infer``. The one non-default: a placeholder array of the parties that do not
send is made with ``integral=False`` (without it mpyc returns garbage for fractional inputs).

The block marked "measurement" at the end is not part of what a user writes: each party writes its bytes
sent, messages to the next party, protocol seconds and peak RSS to ``JOBDIR/stats{pid}.json``, measured the
same way modelshield's parties measure theirs (VmHWM; ru_maxrss is kept for comparison).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np
from mpyc.runtime import mpc

secfxp = mpc.SecFxp()


def share(sender: int, value: np.ndarray | None, shape: list[int]):
    x = value if mpc.pid == sender else np.zeros(shape)
    return mpc.input(secfxp.array(x, integral=False), senders=sender)


async def main() -> None:
    job = sys.argv[1]
    with open(os.path.join(job, "spec.json")) as fh:
        spec = json.load(fh)
    weights = np.load(os.path.join(job, "weights.npz")) if mpc.pid == 0 else None
    rows = np.load(os.path.join(job, "rows.npy")) if mpc.pid == 1 else None

    await mpc.start()
    t0 = time.perf_counter()
    h = share(1, rows, spec["rows_shape"])
    for k, layer in enumerate(spec["layers"]):
        if layer["type"] == "square":
            h = h * h
        else:
            n_in, n_out = layer["shape"]
            W = share(0, None if weights is None else weights[f"W{k}"], [n_in, n_out])
            b = share(0, None if weights is None else weights[f"b{k}"], [n_out])
            h = h @ W + b
    if h.shape[1] == 1:
        label = h[:, 0] >= 0
    else:
        label = mpc.np_argmax(h, axis=1)
    predictions = await mpc.output(label, receivers=1)
    seconds = time.perf_counter() - t0

    # --- measurement (not part of the plain script) ---
    stats = {"party": mpc.pid, "seconds": seconds,
             "bytes_sent": sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid),
             "messages_to_next_party": COUNTER["messages"],
             "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
             "peak_rss_bytes": vm_hwm()}  # ru_maxrss survives exec: a party started by a big parent shows its peak
    await mpc.shutdown()
    if mpc.pid == 1:
        stats["predictions"] = [int(v) for v in np.asarray(predictions).reshape(-1)]
    tmp = os.path.join(job, f".stats{mpc.pid}.json")
    with open(tmp, "w") as fh:
        json.dump(stats, fh)
    os.replace(tmp, os.path.join(job, f"stats{mpc.pid}.json"))  # appears whole: the harness polls for it


def vm_hwm() -> int:  # measurement: this process's own peak resident set (Linux)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


COUNTER = {"messages": 0}
_send = mpc._send_message


def _counting(peer: int, data: object) -> None:  # measurement: messages to the next party (rounds, upper bound)
    COUNTER["messages"] += peer == (mpc.pid + 1) % len(mpc.parties)
    _send(peer, data)


mpc._send_message = _counting

if __name__ == "__main__":
    mpc.run(main())
