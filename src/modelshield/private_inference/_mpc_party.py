"""One mpyc party of :mod:`modelshield.private_inference.mpc` (run as its own OS process).

``python -m modelshield.private_inference._mpc_party JOB -M3 -I i -B PORT --no-log``. Party 0 is the
model owner (secret-shares the weights), party 1 the client (secret-shares the rows and alone learns the
predicted classes), party 2 a helper holding shares only. The placeholder a non-sending party passes to
``mpc.input`` is made with ``integral=False``: without it mpyc silently gives garbage for fixed-point
values.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def peak_rss_bytes() -> int:
    """This process's own peak resident set size. ``VmHWM`` (Linux), else ``ru_maxrss``: on Linux
    ``ru_maxrss`` survives ``exec``, so a party started from a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux: no /proc
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB elsewhere


def main() -> int:
    job = json.loads(open(sys.argv[1]).read())
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    from mpyc.runtime import mpc  # lazy: parses the party options in sys.argv

    secfxp = mpc.SecFxp(job["bits"], job["frac"])
    me = mpc.pid
    counter = {"messages": 0}
    send = mpc._send_message

    def counting(peer: int, data: object) -> None:
        counter["messages"] += 1 if peer == (me + 1) % len(mpc.parties) else 0
        send(peer, data)

    mpc._send_message = counting

    def shared(sender: int, shape: tuple[int, ...], value: np.ndarray | None) -> object:
        if me == sender:
            x = secfxp.array(np.asarray(value, dtype=float), integral=False)  # as the placeholders say: all
        else:  # parties must agree, or integer-valued inputs (pixels, a zero bias) make them run different steps
            x = secfxp.array(np.zeros(shape), integral=False)  # the trap: integral=False on placeholders
        return mpc.input(x, senders=sender)

    async def run() -> list[int]:
        owner = np.load(job["weights"]) if me == 0 else None
        rows = np.load(job["rows"]) if me == 1 else None
        await mpc.start()
        t0 = time.perf_counter()
        layers = job["layers"]
        h = shared(1, tuple(job["rows_shape"]), rows)
        for k, layer in enumerate(layers):
            if layer["type"] == "dense":
                W = shared(0, tuple(layer["shape"]), None if owner is None else owner[f"W{k}"])
                b = shared(0, (layer["shape"][1],), None if owner is None else owner[f"b{k}"])
                h = h @ W + b
            elif layer["type"] == "relu":
                h = mpc.np_where(h >= 0, h, 0)
            elif layer["type"] == "square":
                h = h * h
            else:  # polynomial stand-in, public coefficients
                c = layer["coeffs"]
                acc = h * c[-1] + c[-2]
                for a in reversed(c[:-2]):  # Horner
                    acc = acc * h + a
                h = acc
        if job["rows_shape"] and layers[-1]["shape"][1] == 1:
            pred = (h >= 0).reshape(-1)
        else:
            pred = mpc.np_argmax(h, axis=1)
            pred = pred[0] if isinstance(pred, tuple) else pred
        out = await mpc.output(pred, receivers=[1])
        seconds = time.perf_counter() - t0
        nbytes = sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != me)
        stats = {"party": me, "bytes_sent": int(nbytes), "messages_to_next_party": counter["messages"],
                 "seconds": seconds}  # the inference's own traffic: counted before shutdown's goodbye messages
        await mpc.shutdown()
        stats["peak_rss_bytes"] = peak_rss_bytes()
        if me == 1:
            stats["predictions"] = [int(v) for v in np.asarray(out).reshape(-1)]
        with open(job["out"].format(party=me), "w") as fh:
            json.dump(stats, fh)
        return []

    mpc.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
