"""Kubernetes manifests: valid against the bundled Kubernetes 1.37 schemas (strict), restricted Pod Security,
default-deny network policy with the gateway port only, Secrets by reference."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from modelshield.deploy import DeploySpec, render

kv = pytest.importorskip("kubernetes_validate")  # the provenance-dev extra: bundled schemas, offline

#: Volume types the restricted profile allows (Kubernetes Pod Security Standards, "Volume Types").
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_violations(pod: dict) -> list[str]:
    """The rules of the restricted Pod Security Standard (baseline + restricted), checked on a pod spec;
    an empty list means the pod is admitted by a namespace enforcing ``restricted``."""
    out = []
    psc = pod.get("securityContext") or {}
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(k):
            out.append(k)
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}: {kinds}")
    containers = [*pod.get("containers", []), *pod.get("initContainers", [])]
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation not false")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities not dropping ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"{name}: hostPort")
    return out


def docs(spec: DeploySpec) -> dict[str, list[dict]]:
    files, copies = render(spec)
    assert copies == {}  # the image carries the model; the manifests copy nothing
    return {Path(n).name: [d for d in yaml.safe_load_all(b) if d] for n, b in files.items()}


@pytest.fixture(scope="module")
def specs(models):
    return {
        "plain": DeploySpec(model=models["plain"], target="k8s"),
        "encrypted": DeploySpec(model=models["encrypted"], target="k8s", port=9443, name="fraud-api",
                                namespace="ml-prod", image="reg.example/fraud@sha256:" + "a" * 64, replicas=1),
        "signed": DeploySpec(model=models["signed"], target="k8s", signature=models["signature"],
                             public_key=models["public_key"], cpu_limit="500m", memory_limit="1Gi"),
    }


def test_every_manifest_is_valid_kubernetes(specs):
    version = kv.latest_version()
    for spec in specs.values():
        for name, objs in docs(spec).items():
            for obj in objs:
                kv.validate(obj, version, strict=True)  # raises on any schema error
                if obj["kind"] != "Namespace":
                    assert obj["metadata"]["namespace"] == spec.namespace, name


def test_the_validator_refuses_broken_manifests(specs):
    (dep,) = docs(specs["plain"])["deployment.yaml"]
    breakers = [
        lambda d: d["spec"]["template"]["spec"]["securityContext"].__setitem__("runAsNonRoot", "yes"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].__setitem__("readOnlyRootFS", True),
        lambda d: d["spec"].__setitem__("replicas", "two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
    ]
    for brk in breakers:
        bad = copy.deepcopy(dep)
        brk(bad)
        with pytest.raises(kv.ValidationError):
            kv.validate(bad, kv.latest_version(), strict=True)


def test_pods_meet_the_restricted_profile(specs):
    for spec in specs.values():
        d = docs(spec)
        (dep,) = d["deployment.yaml"]
        pod = dep["spec"]["template"]["spec"]
        assert restricted_violations(pod) == []
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        # every limit is set; requests too
        assert set(c["resources"]["limits"]) >= {"cpu", "memory"} and set(c["resources"]["requests"]) >= {"cpu", "memory"}
        assert c["resources"]["limits"]["cpu"] == spec.cpu_limit and c["resources"]["limits"]["memory"] == spec.memory_limit
        for probe in (c["livenessProbe"], c["readinessProbe"]):
            assert probe["httpGet"]["path"] == "/healthz"
            port = probe["httpGet"]["port"]
            named = {p["name"]: p["containerPort"] for p in c["ports"]}
            assert named.get(port, port) == spec.port
        (ns,) = d["namespace.yaml"]
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_profile_checker_is_live(specs):
    (dep,) = docs(specs["plain"])["deployment.yaml"]
    pod = dep["spec"]["template"]["spec"]
    mutations = [
        lambda p: p["containers"][0]["securityContext"].__setitem__("allowPrivilegeEscalation", True),
        lambda p: p["containers"][0]["securityContext"]["capabilities"].__setitem__("drop", ["NET_RAW"]),
        lambda p: (p["securityContext"].pop("seccompProfile"), p["containers"][0]["securityContext"].pop("seccompProfile")),
        lambda p: (p["securityContext"].pop("runAsNonRoot"), p["containers"][0]["securityContext"].pop("runAsNonRoot")),
        lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        lambda p: p.__setitem__("hostNetwork", True),
    ]
    for m in mutations:
        bad = copy.deepcopy(pod)
        m(bad)
        assert restricted_violations(bad)


def test_network_policy_denies_all_but_the_gateway_port(specs):
    for spec in specs.values():
        deny, allow = docs(spec)["networkpolicy.yaml"]
        assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
        assert allow["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = allow["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": spec.port}]
        (svc,) = docs(spec)["service.yaml"]
        assert [p["port"] for p in svc["spec"]["ports"]] == [spec.port] and svc["spec"]["type"] == "ClusterIP"
        (dep,) = docs(spec)["deployment.yaml"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in allow["spec"]["podSelector"]["matchLabels"].items())


def test_secrets_are_references(specs, models):
    for kind, spec in specs.items():
        d = docs(spec)
        kinds = {o["kind"] for objs in d.values() for o in objs}
        assert "Secret" not in kinds  # created by the operator, out of band
        (dep,) = d["deployment.yaml"]
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        secret_vols = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        assert "env" not in c  # no secret (nor anything else) through the environment
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        if kind == "encrypted":
            assert set(secret_vols) == {"api-keys", "model-key"}
            assert secret_vols["model-key"]["secretName"] == "modelshield-model-key"
            (item,) = secret_vols["model-key"]["items"]
            key_file = f"{mounts['model-key']['mountPath']}/{item['path']}"
            assert mounts["model-key"]["readOnly"] is True
            assert c["command"][c["command"].index("--key-file") + 1] == key_file
            assert c["command"][:4] == ["/usr/bin/python3", "-m", "modelshield", "serve"]
        else:
            assert set(secret_vols) == {"api-keys"} and "command" not in c
        assert secret_vols["api-keys"]["secretName"] == "modelshield-api-keys"
        assert mounts["api-keys"]["readOnly"] is True
    assert docs(specs["encrypted"])["deployment.yaml"][0]["spec"]["template"]["spec"]["containers"][0]["image"] \
        == specs["encrypted"].image
