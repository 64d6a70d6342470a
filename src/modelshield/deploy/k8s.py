"""The Kubernetes target: manifests for the gateway under the *restricted* Pod Security Standard.

* ``namespace.yaml``: the namespace, labelled to *enforce* the restricted profile (the API server then
  refuses any pod of it that is not: the profile is checked by Kubernetes, not only by these files).
* ``deployment.yaml``: non-root (uid 65532), seccomp ``RuntimeDefault``, all capabilities dropped, no
  privilege escalation, read-only root file system, no service-account token; resource requests and
  limits; liveness and readiness probes on ``/healthz``. Secrets by reference only: the API-key store
  (Secret ``modelshield-api-keys``, key ``keys.json``) and, for an encrypted model, the model key
  (Secret ``modelshield-model-key``, key ``key``, mounted as a file -- not an environment variable, which
  child processes inherit and ``/proc/<pid>/environ`` shows -- and passed with ``--key-file``).
* ``service.yaml``: a ClusterIP Service on the gateway port.
* ``networkpolicy.yaml``: deny all ingress and egress in the namespace, then allow ingress to the
  gateway port only.
* ``pvc.yaml``: the gateway's state (audit log, its chain key, monitor state).
* ``serviceaccount.yaml``: a service account without an automounted token.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelshield._version import __version__
from modelshield.deploy.spec import API_KEYS_SECRET, MODEL_KEY_SECRET, STATE_DIR

if TYPE_CHECKING:
    from modelshield.deploy.spec import DeploySpec

__all__ = ["render"]

UID = 65532
MODEL_KEY_FILE = "/run/secrets/modelshield/model.key"


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors/aliases (some tools and readers do not follow them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _labels(spec: DeploySpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "modelshield"}


def _meta(spec: DeploySpec, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name or spec.name, "namespace": spec.namespace, "labels": _labels(spec), **extra}


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(spec: DeploySpec, sha256: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "timeoutSeconds": 5}
    container: dict[str, Any] = {
        "name": "gateway",
        "image": spec.image or f"{spec.name}:{sha256[:12]}",
        "imagePullPolicy": "Always",  # a cached private image is not reused without the pull credentials
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "securityContext": _security_context(),
        "resources": {
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request, "ephemeral-storage": "64Mi"},
            "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit, "ephemeral-storage": "256Mi"},
        },
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20, "failureThreshold": 3},
        "readinessProbe": {**probe, "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3},
        "volumeMounts": [
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "api-keys", "mountPath": f"{STATE_DIR}/keys.json", "subPath": "keys.json", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private in-memory emptyDir
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "state", "persistentVolumeClaim": {"claimName": f"{spec.name}-state"}},
        {"name": "api-keys", "secret": {"secretName": API_KEYS_SECRET, "defaultMode": 0o440, "optional": False}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    if spec.encrypted():
        # the image's entry point reads the key from an environment variable; here it is a file instead
        container["command"] = ["/usr/bin/python3", "-m", "modelshield", *spec.serve_args(key_file=MODEL_KEY_FILE)]
        container["volumeMounts"].append({"name": "model-key", "mountPath": str(Path(MODEL_KEY_FILE).parent),
                                          "readOnly": True})
        volumes.append({"name": "model-key", "secret": {
            "secretName": MODEL_KEY_SECRET, "optional": False,
            # group-readable: the file belongs to root, the gateway reads it through fsGroup
            "items": [{"key": "key", "path": Path(MODEL_KEY_FILE).name, "mode": 0o440}]}})
    pod_spec = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec, annotations={"modelshield.dev/model-sha256": sha256,
                                             "modelshield.dev/model-name": spec.model_name(),
                                             "modelshield.dev/version": __version__}),
        "spec": {
            "replicas": spec.replicas,
            # one writer of the state volume at a time (ReadWriteOnce)
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
            "template": {"metadata": {"labels": _labels(spec)}, "spec": pod_spec},
        },
    }


def render(spec: DeploySpec, sha256: str) -> dict[str, bytes]:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(spec),
          "automountServiceAccountToken": False}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(spec), "spec": {
        "type": "ClusterIP", "selector": {"app.kubernetes.io/name": spec.name},
        "ports": [{"name": "http", "port": spec.port, "targetPort": "http", "protocol": "TCP"}]}}
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(spec, name="default-deny-all"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": _meta(spec, name=f"{spec.name}-allow-gateway"),
             "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": spec.name}},
                      "policyTypes": ["Ingress"],
                      "ingress": [{"ports": [{"protocol": "TCP", "port": spec.port}]}]}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(spec, name=f"{spec.name}-state"),
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    head = (f"# generated by 'modelshield deploy export --target k8s' (modelshield {__version__}) for "
            f"{spec.model_name()} (SHA-256 {sha256})\n")
    if spec.image is None or "@sha256:" not in spec.image:
        head += "# NOTE: pin the image by digest (--image NAME@sha256:...) before deploying\n"

    def doc(*objs: dict[str, Any]) -> bytes:
        return (head + "---\n".join(yaml.dump(o, Dumper=_Dumper, sort_keys=False) for o in objs)).encode("utf-8")

    return {
        "k8s/namespace.yaml": doc(ns),
        "k8s/serviceaccount.yaml": doc(sa),
        "k8s/pvc.yaml": doc(pvc),
        "k8s/deployment.yaml": doc(deployment(spec, sha256)),
        "k8s/service.yaml": doc(svc),
        "k8s/networkpolicy.yaml": doc(deny, allow),
    }
