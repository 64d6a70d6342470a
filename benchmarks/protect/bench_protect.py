"""Protect benchmark: encrypt/decrypt and sign/verify, side by side with the OpenSSF ``model_signing``
CLI (key mode) and with the floors (``hashlib.sha256`` over the same bytes; a single-shot
``cryptography`` AESGCM pass), on a ~512 MiB checkpoint and a directory of 8 x 64 MiB shards.

Every measurement runs in a fresh process, so its peak RSS is its own; times are the median of
``--reps`` runs with warm page cache. In-process operations time only the operation; CLI rows time
the whole command (interpreter start included), as a user sees it.

    .venv/bin/python benchmarks/protect/bench_protect.py            # generate, measure, print, clean up
    .venv/bin/python benchmarks/protect/bench_protect.py --keep     # keep benchmarks/protect/_work

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
    if name == "sha256":  # the hashing floor: stream the same bytes through hashlib
        import hashlib

        files = sorted(x for x in p.rglob("*") if x.is_file() and x.suffix != ".sig") if p.is_dir() else [p]
        t = _Clock()
        for f in files:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                buf = bytearray(1 << 24)
                mv = memoryview(buf)
                while n := fh.readinto(buf):
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
        sign(p, key, signature=a["sig"], force=True)
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
        model_signing.signing.Config().use_elliptic_key_signer(private_key=a["key"]).sign(p, a["sig"])
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


def _worker(name: str, a: dict[str, str]) -> None:
    secs = _op(name, a)
    cpu = _CHILD_CPU[-1] if _CHILD_CPU else _Clock.cpu
    rss = _CHILD_RSS[-1] if _CHILD_RSS else _vm_hwm_mib()
    print(json.dumps({"seconds": secs, "cpu_s": cpu, "rss_mib": rss}))


def measure(name: str, reps: int, **a: str) -> dict[str, float]:
    runs = []
    for _ in range(reps):
        for _attempt in range(2):  # one retry: the shared venv is sometimes mid-upgrade by others
            res = subprocess.run([sys.executable, __file__, "--worker", name, json.dumps(a)],
                                 capture_output=True, text=True)
            if res.returncode == 0:
                break
        if res.returncode != 0:
            raise RuntimeError(f"{name} failed: {res.stderr[-2000:]}")
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "rss_mib": max(r["rss_mib"] for r in runs)}


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


def run(reps: int) -> dict[str, object]:
    ckpt, shards = generate()
    priv, pub = keys()
    have_ms = shutil.which("model_signing", path=str(BIN)) is not None
    res: dict[str, dict[str, dict[str, float]]] = {}
    startup = {"modelshield protect --help": measure("cli", reps, argv=json.dumps([str(BIN / "modelshield"), "protect", "--help"]))}
    if have_ms:
        startup["model_signing --help"] = measure("cli", reps, argv=json.dumps([str(BIN / "model_signing"),
                                                                                 "--help"]))
    for label, target in (("checkpoint", ckpt), ("shards", shards)):
        r: dict[str, dict[str, float]] = {}
        size = sum(f.stat().st_size for f in ([target] if target.is_file() else target.rglob("*")) if f.is_file())
        r["_size"] = {"seconds": 0.0, "rss_mib": size / 2**20}
        r["sha256 floor"] = measure("sha256", reps, path=str(target))
        ours_sig, ms_sig = WORK / f"{label}.ours.sig", WORK / f"{label}.ms.sig"
        r["modelshield sign (API)"] = measure("ours-sign", reps, path=str(target), key=str(priv), sig=str(ours_sig))
        r["modelshield verify (API)"] = measure("ours-verify", reps, path=str(target), key=str(pub),
                                                sig=str(ours_sig))
        r["modelshield sign (CLI)"] = measure("cli", reps, argv=json.dumps(
            [str(BIN / "modelshield"), "protect", "sign", str(target), "--private-key", str(priv), "--signature",
             str(ours_sig), "--force"]))
        r["modelshield verify (CLI)"] = measure("cli", reps, argv=json.dumps(
            [str(BIN / "modelshield"), "protect", "verify", str(target), "--public-key", str(pub), "--signature",
             str(ours_sig)]))
        if have_ms:
            r["model_signing sign key (CLI)"] = measure("cli", reps, argv=json.dumps(
                [str(BIN / "model_signing"), "sign", "key", "--private_key", str(priv), "--signature", str(ms_sig),
                 str(target)]))
            r["model_signing verify key (CLI)"] = measure("cli", reps, argv=json.dumps(
                [str(BIN / "model_signing"), "verify", "key", "--public_key", str(pub), "--signature", str(ms_sig),
                 str(target)]))
            r["model_signing sign (API)"] = measure("ms-api-sign", reps, path=str(target), key=str(priv),
                                                    sig=str(ms_sig))
            r["model_signing verify (API)"] = measure("ms-api-verify", reps, path=str(target), key=str(pub),
                                                      sig=str(ms_sig))
            # cross-tool: each verifies the other's signature (must succeed, or this raises)
            measure("ours-verify", 1, path=str(target), key=str(pub), sig=str(ms_sig))
            measure("ms-api-verify", 1, path=str(target), key=str(pub), sig=str(ours_sig))
        if target.is_file():
            enc, dec = WORK / "ckpt.enc", WORK / "ckpt.dec"
            ref_enc, ref_dec = WORK / "ckpt.aesgcm", WORK / "ckpt.aesgcm.dec"
            r["AESGCM single-shot encrypt (floor)"] = measure("aesgcm-encrypt", reps, path=str(target),
                                                              out=str(ref_enc))
            r["AESGCM single-shot decrypt (floor)"] = measure("aesgcm-decrypt", reps, path=str(ref_enc),
                                                              out=str(ref_dec))
            r["modelshield encrypt (streamed, file)"] = measure("ours-encrypt", reps, path=str(target), out=str(enc))
            r["modelshield decrypt (streamed, file)"] = measure("ours-decrypt", reps, path=str(enc), out=str(dec))
            r["modelshield decrypt to memory"] = measure("ours-decrypt-mem", reps, path=str(enc))
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
                  "| operation | wall s | CPU s | peak RSS MiB | wall vs floor | CPU vs floor |",
                  "|---|---:|---:|---:|---|---|"]
        for name, m in r.items():
            if "encrypt" in name and aes_e:
                ratio, cratio = f"{m['seconds'] / aes_e:.2f}x AESGCM", f"{m['cpu_s'] / aes_ec:.2f}x AESGCM"
            elif "decrypt" in name and aes_d:
                ratio, cratio = f"{m['seconds'] / aes_d:.2f}x AESGCM", f"{m['cpu_s'] / aes_dc:.2f}x AESGCM"
            else:
                ratio, cratio = f"{m['seconds'] / floor:.2f}x sha256", f"{m['cpu_s'] / floor_cpu:.2f}x sha256"
            lines.append(f"| {name} | {m['seconds']:.3f} | {m['cpu_s']:.3f} | {m['rss_mib']:.0f} | {ratio} | {cratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated files in _work")
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker[0], json.loads(args.worker[1]))
        return
    try:
        out = run(args.reps)
        (HERE / "results.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: out[k] for k in ("date", "versions", "cpus", "loadavg_1m_at_end", "reps")}))
        print(table(out))
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
