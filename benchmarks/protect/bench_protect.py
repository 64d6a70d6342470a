"""Protect benchmark: encrypt/decrypt and sign/verify, side by side with the OpenSSF ``model_signing``
CLI (key mode) and with the floors (``hashlib.sha256`` over the same bytes; a single-shot
``cryptography`` AESGCM pass), on a ~512 MiB checkpoint and a directory of 8 x 64 MiB shards.

Every measurement runs in a fresh process, so its peak RSS is its own; times are the median of
``--reps`` interleaved rounds (each round runs every row once, so load changes on a shared machine hit
every tool alike) after one untimed warm-up round (warm page cache, one shared bytecode cache for all
tools). In-process operations time only the operation; CLI rows time the whole command (interpreter
start included), as a user sees it. modelshield's sharded rows use its default shard size (16 MiB
here); model_signing's sharded rows use the same shard size (its API's ``use_shard_serialization``).

    .venv/bin/python benchmarks/protect/bench_protect.py            # generate, measure, print, clean up
    .venv/bin/python benchmarks/protect/bench_protect.py --keep     # keep benchmarks/protect/_work
    .venv/bin/python benchmarks/protect/bench_protect.py --only shards --sign-only --reps 1   # quick look

Needs the bench extra for the peer rows: ``pip install model-signing pyOpenSSL``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
BIN = Path(sys.executable).parent
CKPT_MIB = 512
SHARDS, SHARD_MIB = 8, 64
PEER_SHARD = 16 << 20  # model_signing's shard rows use our default shard size for this model (same workload)
#: modelshield row -> the model_signing row doing the same work, for the speed-up column
PEERS = {
    "modelshield sign (API)": "model_signing sign (API)",
    "modelshield verify (API)": "model_signing verify (API)",
    "modelshield sign (CLI)": "model_signing sign key (CLI)",
    "modelshield verify (CLI)": "model_signing verify key (CLI)",
    "modelshield sign (API, shards)": "model_signing sign (API, shards)",
    "modelshield verify (API, shards)": "model_signing verify (API, shards)",
}


# --- worker: one operation in this (fresh) process -------------------------------------------------


class _Clock:
    """Wall and CPU (process, all threads) time of one operation, imports excluded."""

    cpu = 0.0

    def __init__(self) -> None:
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def stop(self) -> float:
        _Clock.cpu = time.process_time() - self.c0
        return time.perf_counter() - self.w0


def _op(name: str, a: dict[str, str]) -> float:
    """Run operation ``name``; return its seconds (excluding interpreter start and imports)."""
    p = Path(a.get("path", "."))
    if name == "sha256":  # the hashing floor: stream the same bytes through hashlib, one thread
        import hashlib
        import mmap

        files = sorted(x for x in p.rglob("*") if x.is_file() and x.suffix != ".sig") if p.is_dir() else [p]
        t = _Clock()
        # 1 MiB reads into a page-aligned buffer: the cheapest loop measured. A malloc'd bytearray starts
        # 16 bytes into a page, and the kernel's copy into it costs ~50% more CPU (0.76 s vs 0.50 s here).
        mv = memoryview(mmap.mmap(-1, 1 << 20))
        for f in files:
            h = hashlib.sha256()
            with open(f, "rb", buffering=0) as fh:
                while n := fh.readinto(mv):
                    h.update(mv[:n])
            h.digest()
        return t.stop()
    if name in ("aesgcm-encrypt", "aesgcm-decrypt"):  # single-shot floor: read all, one AEAD call, write
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(bytes(32))
        t = _Clock()
        data = p.read_bytes()
        out = aead.encrypt(bytes(12), data, None) if name == "aesgcm-encrypt" else aead.decrypt(bytes(12), data, None)
        Path(a["out"]).write_bytes(out)
        return t.stop()
    if name == "ours-encrypt":
        from modelshield.protect.crypto import encrypt_file

        t = _Clock()
        encrypt_file(p, a["out"], key=bytes(32), force=True)
        return t.stop()
    if name == "ours-decrypt":
        from modelshield.protect.crypto import decrypt_file

        t = _Clock()
        decrypt_file(p, a["out"], key=bytes(32), force=True)
        return t.stop()
    if name == "ours-decrypt-mem":
        from modelshield.protect.crypto import decrypt_file_to_bytes

        t = _Clock()
        decrypt_file_to_bytes(p, key=bytes(32))
        return t.stop()
    if name == "ours-sign":
        from modelshield.protect.keys import load_private_key
        from modelshield.protect.signing import sign

        key = load_private_key(a["key"])
        t = _Clock()
        sign(p, key, signature=a["sig"], force=True, serialization=a.get("serialization", "files"))  # type: ignore[arg-type]
        return t.stop()
    if name == "ours-verify":
        from modelshield.protect.keys import load_public_key
        from modelshield.protect.signing import verify

        key = load_public_key(a["key"])
        t = _Clock()
        verify(p, key, signature=a["sig"])
        return t.stop()
    if name == "ms-api-sign":
        import model_signing

        t = _Clock()
        cfg = model_signing.signing.Config().use_elliptic_key_signer(private_key=a["key"])
        if "shard_size" in a:  # their shard serialization, as its API offers it
            cfg.set_hashing_config(model_signing.hashing.Config().use_shard_serialization(
                shard_size=int(a["shard_size"])))
        cfg.sign(p, a["sig"])
        return t.stop()
    if name == "ms-api-verify":
        import model_signing

        t = _Clock()
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=a["key"]).verify(p, a["sig"])
        return t.stop()
    if name == "cli":  # a whole command line, timed from outside; its own peak RSS via wait4
        t = _Clock()
        proc = subprocess.Popen(json.loads(a["argv"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = t.stop()
        _CHILD_RSS.append(usage.ru_maxrss / 1024)
        _CHILD_CPU.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"command failed: {proc.stdout.read().decode()}{proc.stderr.read().decode()}")
        return secs
    raise SystemExit(f"unknown op {name}")


_CHILD_RSS: list[float] = []
_CHILD_CPU: list[float] = []


def _vm_hwm_mib() -> float:
    """This process's peak RSS. Unlike ru_maxrss, VmHWM is not inherited from the forking parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_FLOOR_SCRIPT = """
import hashlib, mmap, sys
from pathlib import Path
p = Path(sys.argv[1])
mv = memoryview(mmap.mmap(-1, 1 << 20))
for f in sorted(x for x in p.rglob("*") if x.is_file() and x.suffix != ".sig") if p.is_dir() else [p]:
    h = hashlib.sha256()
    with open(f, "rb", buffering=0) as fh:
        while n := fh.readinto(mv):
            h.update(mv[:n])
    print(h.hexdigest(), f)
"""


def _worker(name: str, a: dict[str, str]) -> None:
    secs = _op(name, a)
    cpu = _CHILD_CPU[-1] if _CHILD_CPU else _Clock.cpu
    rss = _CHILD_RSS[-1] if _CHILD_RSS else _vm_hwm_mib()
    print(json.dumps({"seconds": secs, "cpu_s": cpu, "rss_mib": rss}))


#: Every process runs with the same environment. pip compiles an installed package to .pyc at install
#: time (model_signing's are in site-packages), but this checkout's modelshield is an editable install
#: and the sessions here set PYTHONDONTWRITEBYTECODE=1, so modelshield would recompile its source on
#: every start. Every tool gets one bytecode cache under _work/ (PYTHONPYCACHEPREFIX; the source tree
#: is not touched), filled by an untimed warm-up round.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache")

Row = tuple[str, str, dict[str, str]]  # (label, worker op, its arguments)


def _once(name: str, a: dict[str, str]) -> dict[str, float]:
    for _attempt in range(2):  # one retry: the shared venv is sometimes mid-upgrade by others
        res = subprocess.run([sys.executable, __file__, "--worker", name, json.dumps(a)],
                             capture_output=True, text=True, env=ENV)
        if res.returncode == 0:
            break
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(name: str, reps: int, **a: str) -> dict[str, float]:
    return measure_rows([("_", name, a)], reps, warmup=False)["_"]


def measure_rows(rows: list[Row], reps: int, *, warmup: bool = True) -> dict[str, dict[str, float]]:
    """Run ``rows`` in interleaved rounds (each round runs every row once, in order), so a load change
    on the shared machine hits every tool alike; an untimed warm-up round first (page cache, bytecode).
    Median seconds and CPU seconds per row, max peak RSS."""
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in rows}
    for i in range(reps + (1 if warmup else 0)):
        for label, name, a in rows:
            r = _once(name, a)
            if i or not warmup:
                runs[label].append(r)
    return {label: {"seconds": statistics.median(r["seconds"] for r in rs),
                    "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                    "rss_mib": max(r["rss_mib"] for r in rs)} for label, rs in runs.items()}


# --- driver ---------------------------------------------------------------------------------------


def generate() -> tuple[Path, Path]:
    import numpy as np

    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    ckpt = WORK / "checkpoint.pt"
    if not ckpt.exists():
        import torch

        state = {f"layer{i}.weight": torch.from_numpy(rng.standard_normal((1024, 1024), dtype=np.float32))
                 for i in range(CKPT_MIB // 4)}
        torch.save(state, ckpt)
    shards = WORK / "shards"
    if not shards.exists():
        shards.mkdir()
        for i in range(SHARDS):
            (shards / f"model-{i:05d}-of-{SHARDS:05d}.safetensors").write_bytes(
                rng.bytes(SHARD_MIB << 20))
        (shards / "config.json").write_text('{"architecture": "bench"}')
    return ckpt, shards


def keys() -> tuple[Path, Path]:
    from modelshield.protect.keys import write_signing_keypair

    priv, pub = WORK / "ec.pem", WORK / "ec.pub.pem"
    if not priv.exists():
        write_signing_keypair(priv, pub, "ecdsa-p256", force=True)
    return priv, pub


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("modelshield", "cryptography", "model-signing"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def run(reps: int, only: str | None = None, sign_only: bool = False) -> dict[str, object]:
    ckpt, shards = generate()
    priv, pub = keys()
    have_ms = shutil.which("model_signing", path=str(BIN)) is not None
    res: dict[str, dict[str, dict[str, float]]] = {}
    start_rows: list[Row] = [("modelshield protect --help", "cli",
                              {"argv": json.dumps([str(BIN / "modelshield"), "protect", "--help"])})]
    if have_ms:
        start_rows.append(("model_signing --help", "cli", {"argv": json.dumps([str(BIN / "model_signing"), "--help"])}))
    startup = measure_rows(start_rows, reps)
    for label, target in (("checkpoint", ckpt), ("shards", shards)):
        if only and label != only:
            continue
        size = sum(f.stat().st_size for f in ([target] if target.is_file() else target.rglob("*")) if f.is_file())
        t, k, kp = str(target), str(priv), str(pub)
        ours_sig, ms_sig = str(WORK / f"{label}.ours.sig"), str(WORK / f"{label}.ms.sig")
        ours_sharded, ms_sharded = str(WORK / f"{label}.ours-shards.sig"), str(WORK / f"{label}.ms-shards.sig")
        rows: list[Row] = [
            ("sha256 floor", "sha256", {"path": t}),
            # the same loop as a whole process, timed from outside like the CLI rows: the floor a
            # command line can reach (interpreter start-up included)
            ("sha256 floor (process)", "cli", {"argv": json.dumps([str(BIN / "python"), "-c", _FLOOR_SCRIPT, t])}),
            ("modelshield sign (API)", "ours-sign", {"path": t, "key": k, "sig": ours_sig}),
            ("modelshield verify (API)", "ours-verify", {"path": t, "key": kp, "sig": ours_sig}),
            ("modelshield sign (API, shards)", "ours-sign",
             {"path": t, "key": k, "sig": ours_sharded, "serialization": "shards"}),
            ("modelshield verify (API, shards)", "ours-verify", {"path": t, "key": kp, "sig": ours_sharded}),
            ("modelshield sign (CLI)", "cli", {"argv": json.dumps(
                [str(BIN / "modelshield"), "protect", "sign", t, "--private-key", k, "--signature", ours_sig,
                 "--force"])}),
            ("modelshield verify (CLI)", "cli", {"argv": json.dumps(
                [str(BIN / "modelshield"), "protect", "verify", t, "--public-key", kp, "--signature", ours_sig])}),
        ]
        if have_ms:
            rows += [
                ("model_signing sign key (CLI)", "cli", {"argv": json.dumps(
                    [str(BIN / "model_signing"), "sign", "key", "--private_key", k, "--signature", ms_sig, t])}),
                ("model_signing verify key (CLI)", "cli", {"argv": json.dumps(
                    [str(BIN / "model_signing"), "verify", "key", "--public_key", kp, "--signature", ms_sig, t])}),
                ("model_signing sign (API)", "ms-api-sign", {"path": t, "key": k, "sig": ms_sig}),
                ("model_signing verify (API)", "ms-api-verify", {"path": t, "key": kp, "sig": ms_sig}),
                ("model_signing sign (API, shards)", "ms-api-sign",
                 {"path": t, "key": k, "sig": ms_sharded, "shard_size": str(PEER_SHARD)}),
                # model_signing 1.1.1 cannot verify its own sharded signatures (it reads shard_size back
                # as a float); it verifies ours, which list the same shards (size, names, digests)
                ("model_signing verify (API, shards)", "ms-api-verify", {"path": t, "key": kp, "sig": ours_sharded}),
            ]
        enc, dec = WORK / "ckpt.enc", WORK / "ckpt.dec"
        ref_enc, ref_dec = WORK / "ckpt.aesgcm", WORK / "ckpt.aesgcm.dec"
        crypto = target.is_file() and not sign_only
        if crypto:
            rows += [
                ("AESGCM single-shot encrypt (floor)", "aesgcm-encrypt", {"path": t, "out": str(ref_enc)}),
                ("AESGCM single-shot decrypt (floor)", "aesgcm-decrypt", {"path": str(ref_enc), "out": str(ref_dec)}),
                ("modelshield encrypt (streamed, file)", "ours-encrypt", {"path": t, "out": str(enc)}),
                ("modelshield decrypt (streamed, file)", "ours-decrypt", {"path": str(enc), "out": str(dec)}),
                ("modelshield decrypt to memory", "ours-decrypt-mem", {"path": str(enc)}),
            ]
        r: dict[str, dict[str, float]] = {"_size": {"seconds": 0.0, "rss_mib": size / 2**20}}
        r |= measure_rows(rows, reps)
        if have_ms:  # cross-tool: each verifies the other's signature (must succeed, or this raises)
            measure("ours-verify", 1, path=t, key=kp, sig=ms_sig)
            measure("ms-api-verify", 1, path=t, key=kp, sig=ours_sig)
            measure("ours-verify", 1, path=t, key=kp, sig=ms_sharded)
        if crypto:
            from modelshield.protect.signing import hash_file

            assert hash_file(dec) == hash_file(target)
            for f in (enc, dec, ref_enc, ref_dec):
                f.unlink()
        res[label] = r
    return {"date": dt.date.today().isoformat(), "versions": _versions(), "cpus": os.cpu_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2), "reps": reps, "startup": startup, "results": res}


def table(out: dict[str, object]) -> str:
    lines = ["| CLI start-up (no work) | wall s | CPU s | peak RSS MiB |", "|---|---:|---:|---:|"]
    for name, m in out["startup"].items():  # type: ignore[union-attr]
        lines.append(f"| {name} | {m['seconds']:.3f} | {m['cpu_s']:.3f} | {m['rss_mib']:.0f} |")
    for label, r in out["results"].items():  # type: ignore[union-attr]
        size = r.pop("_size")["rss_mib"]
        floor = r["sha256 floor"]["seconds"]
        aes_e = r.get("AESGCM single-shot encrypt (floor)", {}).get("seconds")
        aes_d = r.get("AESGCM single-shot decrypt (floor)", {}).get("seconds")
        floor_cpu = r["sha256 floor"]["cpu_s"]
        aes_ec = r.get("AESGCM single-shot encrypt (floor)", {}).get("cpu_s")
        aes_dc = r.get("AESGCM single-shot decrypt (floor)", {}).get("cpu_s")
        lines += [f"\n### {label} ({size:,.0f} MiB)\n",
                  "| operation | wall s | CPU s | peak RSS MiB | wall vs floor | CPU vs floor "
                  "| model_signing wall / ours | model_signing CPU / ours |",
                  "|---|---:|---:|---:|---|---|---:|---:|"]
        for name, m in r.items():
            if "encrypt" in name and aes_e:
                ratio, cratio = f"{m['seconds'] / aes_e:.2f}x AESGCM", f"{m['cpu_s'] / aes_ec:.2f}x AESGCM"
            elif "decrypt" in name and aes_d:
                ratio, cratio = f"{m['seconds'] / aes_d:.2f}x AESGCM", f"{m['cpu_s'] / aes_dc:.2f}x AESGCM"
            else:
                ratio, cratio = f"{m['seconds'] / floor:.2f}x sha256", f"{m['cpu_s'] / floor_cpu:.2f}x sha256"
            peer = r.get(PEERS.get(name, ""))
            vs = (f"{peer['seconds'] / m['seconds']:.2f}x | {peer['cpu_s'] / m['cpu_s']:.2f}x" if peer
                  else " | ")
            lines.append(f"| {name} | {m['seconds']:.3f} | {m['cpu_s']:.3f} | {m['rss_mib']:.0f} | {ratio} | {cratio} "
                         f"| {vs} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=5, help="timed rounds (after one untimed warm-up round)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files in _work")
    ap.add_argument("--only", choices=["checkpoint", "shards"], help="measure one model only (quick runs)")
    ap.add_argument("--sign-only", action="store_true", help="skip the encryption rows (quick runs)")
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker[0], json.loads(args.worker[1]))
        return
    try:
        out = run(args.reps, args.only, args.sign_only)
        if not (args.only or args.sign_only):  # quick runs do not replace the recorded results
            (HERE / "results.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: out[k] for k in ("date", "versions", "cpus", "loadavg_1m_at_end", "reps")}))
        print(table(out))
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
