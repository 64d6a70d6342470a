"""Side-by-side benchmark: modelshield vs. modelscan, picklescan and fickling on the same files.

Whole processes (start-up included), peak RSS from ``wait4``, verdicts from each tool's exit code.
Large files are generated under ``benchmarks/scan/_work/`` (git-ignored) and deleted afterwards
unless ``--keep``. The test corpus comes from ``tests/artifacts/corpus.py``.

    .venv/bin/python benchmarks/scan/run.py [--keep] [--skip-large] [--skip-corpus] [--only joblib ...]

Writes ``_work/results.json`` and ``_work/results.md`` (the tables pasted into README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(__file__).resolve().parent / "_work"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests" / "checks"))

TIMEOUT = 300
#: Every tool runs with the same environment. Bytecode: pip compiles an installed package's modules
#: at install time, but this checkout's modelshield is an editable install, and sessions here set
#: PYTHONDONTWRITEBYTECODE=1 -- modelshield would then recompile its ~5k lines on every run while
#: the peers load their installed .pyc files. So every tool gets one bytecode cache under _work/
#: (PYTHONPYCACHEPREFIX; the source tree is not touched) and one untimed warm-up run per file.
PYCACHE = WORK / "pycache"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update({"OMP_NUM_THREADS": "1", "PYTHONPYCACHEPREFIX": str(PYCACHE)})


def _verdict_exitcode(flag: set[int], clean: set[int]):
    def parse(rc: int, out: str, err: str) -> str:
        if rc in flag:
            return "flagged"
        if rc in clean:
            return "clean"
        return "error"
    return parse


def _modelscan(rc: int, out: str, err: str) -> str:
    if rc == 1:
        return "flagged"
    if rc in (0, 3):  # 3: "no supported files" -> nothing was scanned
        return "clean" if rc == 0 else "skipped"
    return "error"


def _picklescan(rc: int, out: str, err: str) -> str:
    if rc == 1:
        return "flagged"
    if rc == 0:
        return "skipped" if "Scanned files: 0" in out else "clean"
    return "error"


TOOLS: dict[str, tuple[list[str], object]] = {
    "modelshield": ([str(BIN / "modelshield"), "scan", "-q"], _verdict_exitcode({1}, {0})),
    "modelshield (python -m)": ([str(BIN / "python"), "-m", "modelshield.artifacts"],
                                _verdict_exitcode({1}, {0})),
    "picklescan": ([str(BIN / "picklescan"), "-p"], _picklescan),
    "modelscan": ([str(BIN / "modelscan"), "-p"], _modelscan),
    "fickling": ([str(BIN / "fickling"), "--check-safety"], _verdict_exitcode({1}, {0})),
}
#: peers that are not installed in this environment are left out (and say so in the versions line)
TOOLS = {k: v for k, v in TOOLS.items() if Path(v[0][0]).exists()}


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except Exception:  # a peer that is not installed
        return "not installed"


def run_tool(argv: list[str]) -> dict:
    return run_measured(argv)


TIME = "/usr/bin/time"


def run_measured(argv: list[str]) -> dict:
    """Run once; peak RSS from GNU time's %M (the child's own high-water mark)."""
    if Path(TIME).exists():
        r = _run_raw([TIME, "-f", "__RSS_KB__ %M", *argv])
        lines = r["err"].splitlines()
        rss = [ln for ln in lines if ln.startswith("__RSS_KB__")]
        r["rss_mb"] = int(rss[-1].split()[1]) / 1024 if rss else None
        r["err"] = "\n".join(ln for ln in lines if not ln.startswith("__RSS_KB__"))
        return r
    return _run_raw(argv)


def _run_raw(argv: list[str]) -> dict:
    """Run once with peak RSS measured by wait4 on this very child (inflated by the parent's
    memory at fork time on Linux; GNU time is preferred)."""
    t0 = time.perf_counter()
    WORK.mkdir(exist_ok=True)  # cwd: fickling --check-safety writes safety_results.json into it
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=WORK, env=ENV)
    deadline = t0 + TIMEOUT
    out_chunks: list[bytes] = []
    import threading

    def drain(stream, sink):
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)
    eo: list[bytes] = []
    th = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
          threading.Thread(target=drain, args=(proc.stderr, eo))]
    for t in th:
        t.start()
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            return {"seconds": TIMEOUT, "rss_mb": ru.ru_maxrss / 1024, "rc": None, "timeout": True,
                    "out": "", "err": ""}
        time.sleep(0.005)
    secs = time.perf_counter() - t0
    for t in th:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": secs, "rss_mb": ru.ru_maxrss / 1024, "rc": proc.returncode, "timeout": False,
            "out": b"".join(out_chunks).decode(errors="replace")[-4000:],
            "err": b"".join(eo).decode(errors="replace")[-2000:]}


# ---------------------------------------------------------------------------- large files
def make_large(dirpath: Path) -> dict[str, Path]:
    import numpy as np

    dirpath.mkdir(parents=True, exist_ok=True)
    files = {}
    ckpt = dirpath / "checkpoint_500mb.pt"
    if not ckpt.exists():
        import torch

        torch.manual_seed(0)
        sd = {f"layer{i}.weight": torch.randn(4096, 3815) for i in range(8)}  # 8 x 62.5 MB
        torch.save(sd, ckpt)
        del sd
    files["PyTorch checkpoint"] = ckpt
    rf = dirpath / "random_forest_200mb.joblib"
    if not rf.exists():
        import joblib
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier

        X, y = make_classification(n_samples=40_000, n_features=20, flip_y=0.4, random_state=0)
        model = RandomForestClassifier(n_estimators=230, random_state=0, n_jobs=1).fit(X, y)
        joblib.dump(model, rf)
        del model
    files["joblib RandomForest"] = rf
    arr = dirpath / "array_200mb_p4.pkl"
    if not arr.exists():
        import pickle

        with arr.open("wb") as fh:
            pickle.dump(np.random.default_rng(0).random(25_000_000), fh, protocol=4)
    files["protocol-4 array pickle"] = arr
    return files


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as fh:
        hashlib.file_digest(fh, "sha256")


def _inprocess(path: Path) -> dict:
    """In a fresh interpreter: best-of-3 scan, scan+hash and hashlib alone (warm page cache)."""
    code = (
        "import sys,time,json,hashlib\n"
        "from modelshield.artifacts import scan\n"
        "p=sys.argv[1];out={}\n"
        "def t(f):\n"
        "    best=1e9\n"
        "    for _ in range(3):\n"
        "        t0=time.perf_counter();f();best=min(best,time.perf_counter()-t0)\n"
        "    return best\n"
        "out['scan_s']=t(lambda: scan(p))\n"
        "out['scan_hash_s']=t(lambda: scan(p, hash=True))\n"
        "out['hashlib_s']=t(lambda: hashlib.file_digest(open(p,'rb'),'sha256'))\n"
        "print(json.dumps(out))\n")
    r = subprocess.run([str(BIN / "python"), "-c", code, str(path)], capture_output=True, text=True, check=True,
                       env=ENV)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["rss_mb"] = max((r["rss_mb"] or 0) for r in runs) or None
    best["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    best["median_s"] = statistics.median(r["seconds"] for r in runs)
    return best


def bench_large(files: dict[str, Path], reps: int) -> dict:
    """Per file: every row once untimed (warm-up), then ``reps`` interleaved rounds (each round runs
    every row once, so load changes on the shared machine hit all tools alike); best and median."""
    out: dict = {}
    hash_code = "import hashlib,sys;hashlib.file_digest(open(sys.argv[1],'rb'),'sha256')"
    for label, path in files.items():
        size_mb = path.stat().st_size / 1e6
        warm_page_cache(path)  # so that no tool pays for the first read
        rows: list[tuple[str, list[str], object, int]] = [
            ("python -c pass (interpreter floor)", [str(BIN / "python"), "-c", "pass"], None, reps)]
        for tool, (argv, parse) in TOOLS.items():
            rows.append((tool, [*argv, str(path)], parse, 1 if tool == "fickling" else reps))
        for tool in ("modelshield", "modelshield (python -m)"):
            argv, parse = TOOLS[tool]
            rows.append((f"{tool} --hash", [*argv, "--hash", str(path)], parse, reps))
        rows.append(("hashlib.sha256 (process)", [str(BIN / "python"), "-c", hash_code, str(path)], None, reps))
        for _, argv, _, _ in rows:
            run_measured(argv)  # untimed warm-up: bytecode cache, lazy imports
        runs: dict[str, list[dict]] = defaultdict(list)
        for i in range(reps):
            for name, argv, _, n in rows:
                if i < n:
                    runs[name].append(run_measured(argv))
        table = {}
        for name, _, parse, _ in rows:
            r = _best(runs[name])
            r["verdict"] = ("timeout" if r["timeout"] else parse(r["rc"], r["out"], r["err"])) if parse else "-"
            table[name] = r
        inproc = _inprocess(path)
        out[label] = {"file": path.name, "size_mb": size_mb, "tools": table, "modelshield_in_process": inproc}
        print(f"{label}: done", flush=True)
    return out


# ---------------------------------------------------------------------------- corpus
def bench_corpus(root: Path) -> dict:
    from artifact.corpus import build

    cases = build(root)
    results = []
    for c in cases:
        row = {"name": c.name, "expect": c.expect, "technique": c.technique, "tools": {}}
        for tool, (argv, parse) in TOOLS.items():
            if tool.startswith("modelshield ("):
                continue
            r = run_tool([*argv, str(c.path)])
            row["tools"][tool] = "timeout" if r["timeout"] else parse(r["rc"], r["out"], r["err"])
        results.append(row)
        print(f"{c.expect}/{c.name}: {row['tools']}", flush=True)
    return {"cases": results}


def summarise(res: dict) -> str:
    lines = [f"Measured {res['date']} on {res['machine']}; peers: " + ", ".join(
        f"{k} {v}" for k, v in res["versions"].items()) + ".", ""]
    if res.get("large"):
        lines += ["| file | size | tool | best s | median s | peak RSS (MB) | verdict |",
                  "|---|---:|---|---:|---:|---:|---|"]
        for label, d in res["large"].items():
            for tool, r in d["tools"].items():
                rss = f"{r['rss_mb']:.0f}" if r.get("rss_mb") else "-"
                lines.append(f"| {label} | {d['size_mb']:.0f} MB | {tool} | {r['seconds']:.2f} | {r['median_s']:.2f} | "
                             f"{rss} | {r['verdict']} |")
            ip = d["modelshield_in_process"]
            lines.append(f"| {label} | {d['size_mb']:.0f} MB | in-process: scan / scan+hash / hashlib | "
                         f"{ip['scan_s']:.3f} / {ip['scan_hash_s']:.3f} / {ip['hashlib_s']:.3f} | - | - | - |")
        lines.append("")
    if res.get("corpus"):
        cases = res["corpus"]["cases"]
        tools = [t for t in cases[0]["tools"]]
        lines += ["| tool | malicious flagged | malicious missed | benign flagged (FP) | benign errors | "
                  "hostile flagged | hostile clean | hostile errors/timeouts |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for t in tools:
            cnt = defaultdict(int)
            for c in cases:
                v = c["tools"][t]
                cnt[(c["expect"], v)] += 1
            mal = sum(v for (e, _), v in cnt.items() if e == "malicious")
            ben = sum(v for (e, _), v in cnt.items() if e == "benign")
            rob = sum(v for (e, _), v in cnt.items() if e == "robust")
            lines.append(
                f"| {t} | {cnt[('malicious', 'flagged')]}/{mal} | "
                f"{mal - cnt[('malicious', 'flagged')]} | {cnt[('benign', 'flagged')]}/{ben} | "
                f"{cnt[('benign', 'error')] + cnt[('benign', 'timeout')]} | {cnt[('robust', 'flagged')]}/{rob} | "
                f"{cnt[('robust', 'clean')] + cnt[('robust', 'skipped')]} | "
                f"{cnt[('robust', 'error')] + cnt[('robust', 'timeout')]} |")
        lines += ["", "Per technique (F flagged, . clean/not scanned, E error, T timeout):", "",
                  "| case | technique | " + " | ".join(tools) + " |", "|---|---|" + "---|" * len(tools)]
        sym = {"flagged": "F", "clean": ".", "skipped": ".", "error": "E", "timeout": "T"}
        for c in cases:
            lines.append(f"| {c['expect']}/{c['name']} | {c['technique']} | "
                         + " | ".join(sym[c["tools"][t]] for t in tools) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-corpus", action="store_true")
    ap.add_argument("--reps", type=int, default=7, help="timed rounds per large file (fickling: 1)")
    ap.add_argument("--only", choices=("checkpoint", "joblib", "array"), action="append",
                    help="large files to run (repeatable; default all) - for quick iterations")
    args = ap.parse_args()
    free = shutil.disk_usage(WORK.parent).free
    if free < 4e9:
        sys.exit(f"need 4 GB free under {WORK.parent}, have {free / 1e9:.1f} GB")
    WORK.mkdir(exist_ok=True)
    res: dict = {
        "date": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPUs (shared), Python {sys.version.split()[0]}",
        "versions": {p: _version(p) for p in ("modelshield", "picklescan", "modelscan", "fickling", "torch",
                                             "scikit-learn", "joblib", "numpy")},
    }
    try:
        if not args.skip_large:
            files = make_large(WORK / "large")
            if args.only:
                keys = {"checkpoint": "PyTorch checkpoint", "joblib": "joblib RandomForest",
                        "array": "protocol-4 array pickle"}
                files = {k: v for k, v in files.items() if k in {keys[o] for o in args.only}}
            res["large"] = bench_large(files, args.reps)
        if not args.skip_corpus:
            res["corpus"] = bench_corpus(WORK / "corpus")
    finally:
        if not args.keep:
            shutil.rmtree(WORK / "large", ignore_errors=True)
            shutil.rmtree(WORK / "corpus", ignore_errors=True)
        shutil.rmtree(PYCACHE, ignore_errors=True)
    (WORK / "results.json").write_text(json.dumps(res, indent=2, default=str))
    md = summarise(res)
    (WORK / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
