#!/usr/bin/env python3
"""Checks what a schema cannot: that the manifests under deploy/k8s fit
together and fit the daemon.

k8s_schema_check.mjs validates each object against the Kubernetes, Prometheus
Operator and KEDA schemas (types, required fields, enums). This checker reads
all manifests as one set and verifies the references between them and the
inferd-specific rules:

  - known apiVersion/kind pairs; metadata.name is a DNS-1123 name;
  - a Deployment's selector matches its Pod template labels;
  - container and port names are valid and unique in a Pod; probes have one
    handler; grpc probe ports and named probe ports exist on the container;
  - restartPolicy appears only on init containers, as "Always" (a native
    sidecar); plain init containers have no probes;
  - an inferd container bound to loopback (flags, or the ConfigMap its
    --config points at) has exec probes only, since kubelet's grpc, http and
    tcp probes dial the Pod IP; `inferd healthcheck` targets the bound port;
  - inferd containers run as the Dockerfile's numeric USER, non-root, with a
    read-only root filesystem, no privilege escalation and one GPU limit;
  - shutdown fits the grace period: preStop sleep + one readiness period +
    server.shutdown_grace_seconds <= terminationGracePeriodSeconds;
  - Services, ServiceMonitors, PodMonitors and PodDisruptionBudgets select
    something, and the ports they name exist; a "grpc" port has appProtocol
    grpc;
  - HPAs and ScaledObjects scale an existing Deployment within sane bounds,
    and an HPA's custom metrics are served by the prometheus-adapter rules;
  - volume mounts name volumes, configMap volumes name ConfigMaps of the set;
  - the inferd-config ConfigMap carries the same settings as
    deploy/docker/inferd.yaml;
  - every kustomization resource exists;
  - the image agrees with its config: the Dockerfile copies
    deploy/docker/inferd.yaml to the path its CMD passes to --config, EXPOSEs
    the gRPC and metrics ports, and its HEALTHCHECK targets the gRPC port.

Usage: k8s_semantic_check.py [--root REPO]; prints one line per problem and
exits 1 when there is one.
"""

import argparse
import glob
import os
import re
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

KNOWN_KINDS = {
    ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "PersistentVolumeClaim"), ("v1", "Namespace"), ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
DAEMON_DEFAULT_GRPC_LISTEN = "127.0.0.1:50051"  # ServerConfig default
DAEMON_DEFAULT_SHUTDOWN_GRACE = 20.0            # ServerConfig default


class Doc:
    """One Kubernetes object and where it came from."""

    def __init__(self, path: str, obj: Dict[str, Any]):
        self.path = path
        self.obj = obj

    @property
    def kind(self) -> str:
        return self.obj.get("kind", "")

    @property
    def name(self) -> str:
        return (self.obj.get("metadata") or {}).get("name", "")

    @property
    def labels(self) -> Dict[str, str]:
        return (self.obj.get("metadata") or {}).get("labels") or {}

    def where(self) -> str:
        return f"{self.path}: {self.kind}/{self.name}"


class Context:
    """What the manifests are checked against besides each other."""

    def __init__(self, docker_config: Optional[Dict[str, Any]] = None,
                 dockerfile_uid: Optional[int] = None):
        self.docker_config = docker_config
        self.dockerfile_uid = dockerfile_uid


def load(paths: Iterable[str]) -> List[Doc]:
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for obj in yaml.safe_load_all(f):
                if obj is not None:
                    docs.append(Doc(path, obj))
    return docs


def _selector_matches(match_labels: Dict[str, str], labels: Dict[str, str]) -> bool:
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def _pod_spec(doc: Doc) -> Optional[Dict[str, Any]]:
    if doc.kind not in WORKLOAD_KINDS:
        return None
    return ((doc.obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _pod_labels(doc: Doc) -> Dict[str, str]:
    return (((doc.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def _containers(pod: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    return ([("initContainers", c) for c in pod.get("initContainers") or []] +
            [("containers", c) for c in pod.get("containers") or []])


def _is_inferd(container: Dict[str, Any]) -> bool:
    image = container.get("image", "")
    return bool(re.search(r"(^|/)inferd(:|@|$)", image))


def _flag(args: List[str], name: str) -> Optional[str]:
    for i, a in enumerate(args):
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def _host_port(address: str) -> Tuple[str, Optional[int]]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host, None


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _daemon_config(container: Dict[str, Any], pod: Dict[str, Any],
                   configmaps: Dict[str, Doc]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """Returns the parsed config the container's --config points at (through a
    mounted ConfigMap), or (None, problem) when it cannot be found."""
    args = (container.get("command") or [])[1:] + (container.get("args") or [])
    path = _flag(args, "config")
    if path is None:
        return None, None
    directory, filename = os.path.split(path)
    for mount in container.get("volumeMounts") or []:
        if mount.get("mountPath", "").rstrip("/") != directory:
            continue
        volume = next((v for v in pod.get("volumes") or [] if v.get("name") == mount.get("name")), None)
        if not volume or "configMap" not in volume:
            return None, f"--config {path} is not on a mounted ConfigMap"
        cm = configmaps.get(volume["configMap"].get("name", ""))
        if cm is None:
            return None, f"--config {path}: ConfigMap {volume['configMap'].get('name')} is not in the set"
        text = (cm.obj.get("data") or {}).get(filename)
        if text is None:
            return None, f"--config {path}: ConfigMap {cm.name} has no key {filename}"
        try:
            return yaml.safe_load(text) or {}, None
        except yaml.YAMLError as e:
            return None, f"--config {path}: ConfigMap {cm.name} key {filename} is not YAML: {e}"
    return None, f"--config {path}: no volume is mounted at {directory}"


def _check_probe(where: str, cname: str, probe_name: str, probe: Dict[str, Any],
                 container: Dict[str, Any], errors: List[str]) -> None:
    handlers = [h for h in PROBE_HANDLERS if h in probe]
    if len(handlers) != 1:
        errors.append(f"{where}: container {cname} {probe_name} needs exactly one of "
                      f"{', '.join(PROBE_HANDLERS)}, has {handlers or 'none'}")
        return
    handler = handlers[0]
    ports = container.get("ports") or []
    numbers = {p.get("containerPort") for p in ports}
    names = {p.get("name") for p in ports if p.get("name")}
    if handler == "exec":
        command = probe["exec"].get("command")
        if not command or not all(isinstance(c, str) for c in command):
            errors.append(f"{where}: container {cname} {probe_name}.exec.command must be a non-empty list of strings")
    elif handler == "grpc":
        port = probe["grpc"].get("port")
        if not isinstance(port, int):
            errors.append(f"{where}: container {cname} {probe_name}.grpc.port must be a number, got {port!r}")
        elif port not in numbers:
            errors.append(f"{where}: container {cname} {probe_name}.grpc.port {port} is not a containerPort")
    else:
        port = probe[handler].get("port")
        if isinstance(port, str) and port not in names:
            errors.append(f"{where}: container {cname} {probe_name}.{handler}.port {port} names no container port")


def _check_pod(doc: Doc, pod: Dict[str, Any], configmaps: Dict[str, Doc], ctx: Context,
               errors: List[str]) -> None:
    where = doc.where()
    container_names = set()
    port_names: Dict[str, str] = {}
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    for v in volumes.values():
        cm_name = (v.get("configMap") or {}).get("name")
        if cm_name and cm_name not in configmaps:
            errors.append(f"{where}: volume {v.get('name')} uses ConfigMap {cm_name}, which is not in the set")
    for field, c in _containers(pod):
        cname = c.get("name", "")
        if not DNS_1123_LABEL.match(cname):
            errors.append(f"{where}: {field} name {cname!r} is not a DNS-1123 label")
        if cname in container_names:
            errors.append(f"{where}: container name {cname} is used twice")
        container_names.add(cname)
        for p in c.get("ports") or []:
            pname = p.get("name")
            if pname is None:
                continue
            if len(pname) > 15 or not IANA_SVC_NAME.match(pname) or not re.search(r"[a-z]", pname):
                errors.append(f"{where}: container {cname} port name {pname!r} is not an IANA service name "
                              "(<= 15 lowercase letters, digits, '-')")
            if pname in port_names:
                errors.append(f"{where}: port name {pname} is used by containers {port_names[pname]} and {cname}")
            port_names[pname] = cname
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                errors.append(f"{where}: container {cname} mounts volume {m.get('name')}, which is not declared")

        restart = c.get("restartPolicy")
        sidecar = field == "initContainers" and restart == "Always"
        if field == "containers" and restart is not None:
            errors.append(f"{where}: container {cname} sets restartPolicy; only init containers may "
                          "(restartPolicy: Always makes a native sidecar)")
        if field == "initContainers" and restart not in (None, "Always"):
            errors.append(f"{where}: init container {cname} restartPolicy must be Always, got {restart!r}")
        probes = {k: c[k] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in c}
        if field == "initContainers" and not sidecar and probes:
            errors.append(f"{where}: init container {cname} has probes but is not a sidecar "
                          "(restartPolicy: Always)")
        for pname, probe in probes.items():
            _check_probe(where, cname, pname, probe, c, errors)

        if _is_inferd(c):
            _check_inferd_container(doc, pod, c, sidecar, probes, configmaps, ctx, errors)


def _check_inferd_container(doc: Doc, pod: Dict[str, Any], c: Dict[str, Any], sidecar: bool,
                            probes: Dict[str, Any], configmaps: Dict[str, Doc], ctx: Context,
                            errors: List[str]) -> None:
    where = f"{doc.where()}: inferd container {c.get('name')}"
    config, problem = _daemon_config(c, pod, configmaps)
    if problem:
        errors.append(f"{where}: {problem}")
    server = (config or {}).get("server") or {}
    args = c.get("args") or []
    listen = _flag(args, "grpc-listen") or server.get("grpc_listen") or DAEMON_DEFAULT_GRPC_LISTEN
    host, port = _host_port(listen)

    if _is_loopback(host):
        for pname, probe in probes.items():
            if "exec" not in probe:
                errors.append(f"{where}: gRPC is bound to {listen} (loopback) but {pname} is not an exec "
                              "probe; kubelet's grpc/http/tcp probes dial the Pod IP and cannot reach it")
    tls = bool((server.get("tls") or {}).get("cert_file"))
    for pname, probe in probes.items():
        command = (probe.get("exec") or {}).get("command") or []
        if tls and "grpc" in probe:
            errors.append(f"{where}: {pname} is a grpc probe but gRPC speaks TLS (server.tls); kubelet's "
                          "grpc probes speak plain text: run `inferd healthcheck --tls` instead")
        if tls and "healthcheck" in command and "--tls" not in command and \
                _flag(command, "tls-ca") is None:
            errors.append(f"{where}: {pname} runs healthcheck without --tls or --tls-ca but gRPC speaks "
                          "TLS (server.tls)")
        if "healthcheck" in command:
            target = _flag(command, "grpc-target") or DAEMON_DEFAULT_GRPC_LISTEN
            _, target_port = _host_port(target)
            if target_port != port:
                errors.append(f"{where}: {pname} checks {target} but gRPC listens on {listen}")
        if "grpc" in probe and probe["grpc"].get("port") != port:
            errors.append(f"{where}: {pname}.grpc.port {probe['grpc'].get('port')} but gRPC listens on {listen}")
    if "readinessProbe" not in probes or "livenessProbe" not in probes:
        errors.append(f"{where}: needs both a readinessProbe and a livenessProbe")

    pod_sc = pod.get("securityContext") or {}
    sc = c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
        errors.append(f"{where}: securityContext.runAsNonRoot must be true")
    if sc.get("readOnlyRootFilesystem") is not True:
        errors.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if ctx.dockerfile_uid is not None and uid is not None and uid != ctx.dockerfile_uid:
        errors.append(f"{where}: runAsUser {uid} differs from the Dockerfile's USER {ctx.dockerfile_uid}")
    limits = (c.get("resources") or {}).get("limits") or {}
    if "nvidia.com/gpu" not in limits:
        errors.append(f"{where}: resources.limits has no nvidia.com/gpu")

    if not sidecar and doc.kind in WORKLOAD_KINDS:
        grace = pod.get("terminationGracePeriodSeconds", 30)
        pre_stop = ((c.get("lifecycle") or {}).get("preStop")) or {}
        sleep = 0.0
        if "sleep" in pre_stop:
            sleep = float(pre_stop["sleep"].get("seconds", 0))
        elif "exec" in pre_stop:
            cmd = pre_stop["exec"].get("command") or []
            if len(cmd) == 2 and cmd[0].endswith("sleep"):
                sleep = float(cmd[1])
        if not pre_stop:
            errors.append(f"{where}: needs a preStop hook so endpoints drop the Pod before the daemon "
                          "stops serving")
        period = ((probes.get("readinessProbe") or {}).get("periodSeconds", 10))
        drain = float(server.get("shutdown_grace_seconds", DAEMON_DEFAULT_SHUTDOWN_GRACE))
        if sleep + period + drain > grace:
            errors.append(f"{where}: preStop {sleep:g} s + readiness period {period} s + "
                          f"shutdown_grace_seconds {drain:g} s exceed terminationGracePeriodSeconds {grace}")


def check(docs: List[Doc], ctx: Context) -> List[str]:
    """Returns one message per problem in the set of manifests."""
    errors: List[str] = []
    by_kind: Dict[str, List[Doc]] = {}
    for d in docs:
        by_kind.setdefault(d.kind, []).append(d)
        api = d.obj.get("apiVersion")
        if (api, d.kind) not in KNOWN_KINDS:
            errors.append(f"{d.path}: unknown apiVersion/kind {api}/{d.kind}")
        if d.kind != "Kustomization":
            if not DNS_1123_SUBDOMAIN.match(d.name) or len(d.name) > 253:
                errors.append(f"{d.where()}: metadata.name {d.name!r} is not a DNS-1123 name")
    configmaps = {d.name: d for d in by_kind.get("ConfigMap", [])}
    workloads = [d for d in docs if d.kind in WORKLOAD_KINDS]

    for d in workloads:
        spec = d.obj.get("spec") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        if not _selector_matches(match, _pod_labels(d)):
            errors.append(f"{d.where()}: spec.selector.matchLabels {match} do not match the template labels "
                          f"{_pod_labels(d)}")
        _check_pod(d, _pod_spec(d) or {}, configmaps, ctx, errors)

    services = by_kind.get("Service", [])
    for s in services:
        spec = s.obj.get("spec") or {}
        selector = spec.get("selector") or {}
        pods = [w for w in workloads if _selector_matches(selector, _pod_labels(w))]
        if not pods:
            errors.append(f"{s.where()}: spec.selector {selector} matches no Pod template in the set")
        ports = spec.get("ports") or []
        if len(ports) > 1 and any(not p.get("name") for p in ports):
            errors.append(f"{s.where()}: every port needs a name when there are several")
        for p in ports:
            if p.get("name") == "grpc" and p.get("appProtocol") != "grpc":
                errors.append(f"{s.where()}: port grpc needs appProtocol: grpc")
            target = p.get("targetPort", p.get("port"))
            for w in pods:
                cports = [cp for _, c in _containers(_pod_spec(w) or {}) for cp in c.get("ports") or []]
                if isinstance(target, str) and target not in {cp.get("name") for cp in cports}:
                    errors.append(f"{s.where()}: targetPort {target} names no container port of {w.kind}/{w.name}")
                if isinstance(target, int) and target not in {cp.get("containerPort") for cp in cports}:
                    errors.append(f"{s.where()}: targetPort {target} is no containerPort of {w.kind}/{w.name}")

    for m in by_kind.get("ServiceMonitor", []):
        spec = m.obj.get("spec") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        matched = [s for s in services if _selector_matches(match, s.labels)]
        if not matched:
            errors.append(f"{m.where()}: selector {match} matches no Service in the set")
        for e in spec.get("endpoints") or []:
            for s in matched:
                if e.get("port") not in {p.get("name") for p in (s.obj.get("spec") or {}).get("ports") or []}:
                    errors.append(f"{m.where()}: endpoint port {e.get('port')} is not a port of Service {s.name}")

    for m in by_kind.get("PodMonitor", []):
        spec = m.obj.get("spec") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        matched = [w for w in workloads if _selector_matches(match, _pod_labels(w))]
        if not matched:
            errors.append(f"{m.where()}: selector {match} matches no Pod template in the set")
        for e in spec.get("podMetricsEndpoints") or []:
            for w in matched:
                names = {cp.get("name") for _, c in _containers(_pod_spec(w) or {}) for cp in c.get("ports") or []}
                if e.get("port") not in names:
                    errors.append(f"{m.where()}: port {e.get('port')} names no container port of {w.kind}/{w.name}")

    for p in by_kind.get("PodDisruptionBudget", []):
        spec = p.obj.get("spec") or {}
        if ("minAvailable" in spec) == ("maxUnavailable" in spec):
            errors.append(f"{p.where()}: set exactly one of minAvailable and maxUnavailable")
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        if not any(_selector_matches(match, _pod_labels(w)) for w in workloads):
            errors.append(f"{p.where()}: selector {match} matches no Pod template in the set")

    adapter_metrics = _adapter_metrics(configmaps.values(), errors)
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        spec = h.obj.get("spec") or {}
        _check_scale_target(h, spec.get("scaleTargetRef") or {}, workloads, errors)
        if spec.get("minReplicas", 1) > spec.get("maxReplicas", 0):
            errors.append(f"{h.where()}: minReplicas {spec.get('minReplicas', 1)} > maxReplicas "
                          f"{spec.get('maxReplicas')}")
        for metric in spec.get("metrics") or []:
            mtype = metric.get("type", "")
            if mtype in ("Pods", "Object", "External"):
                name = ((metric.get(mtype[0].lower() + mtype[1:]) or {}).get("metric") or {}).get("name")
                if adapter_metrics is not None and name not in adapter_metrics:
                    errors.append(f"{h.where()}: {mtype} metric {name} is not served by the prometheus-adapter "
                                  f"rules (they serve {sorted(adapter_metrics)})")

    for so in by_kind.get("ScaledObject", []):
        spec = so.obj.get("spec") or {}
        _check_scale_target(so, spec.get("scaleTargetRef") or {}, workloads, errors)
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            errors.append(f"{so.where()}: minReplicaCount > maxReplicaCount")
        for t in spec.get("triggers") or []:
            if t.get("type") != "prometheus":
                continue
            md = t.get("metadata") or {}
            for key in ("serverAddress", "query", "threshold"):
                if not md.get(key):
                    errors.append(f"{so.where()}: prometheus trigger needs metadata.{key}")
            if "inferd_scaler_desired_replicas" not in (md.get("query") or ""):
                errors.append(f"{so.where()}: prometheus trigger query does not use inferd_scaler_desired_replicas")

    cm = configmaps.get("inferd-config")
    if ctx.docker_config is not None:
        if cm is None:
            errors.append("deploy/k8s: no ConfigMap inferd-config")
        else:
            try:
                settings = yaml.safe_load((cm.obj.get("data") or {}).get("inferd.yaml", "")) or {}
            except yaml.YAMLError as e:
                settings = None
                errors.append(f"{cm.where()}: inferd.yaml is not YAML: {e}")
            if settings is not None and settings != ctx.docker_config:
                errors.append(f"{cm.where()}: inferd.yaml settings {settings} differ from "
                              f"deploy/docker/inferd.yaml {ctx.docker_config}")
    return errors


def _check_scale_target(doc: Doc, ref: Dict[str, Any], workloads: List[Doc], errors: List[str]) -> None:
    if not any(w.kind == ref.get("kind", "Deployment") and w.name == ref.get("name") for w in workloads):
        errors.append(f"{doc.where()}: scaleTargetRef {ref.get('kind', 'Deployment')}/{ref.get('name')} "
                      "is not in the set")


def _adapter_metrics(configmaps: Iterable[Doc], errors: List[str]) -> Optional[set]:
    """Names of the custom metrics that prometheus-adapter ConfigMaps serve, or
    None when the set has no adapter config."""
    served = None
    for cm in configmaps:
        text = (cm.obj.get("data") or {}).get("config.yaml")
        if text is None:
            continue
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            errors.append(f"{cm.where()}: config.yaml is not YAML: {e}")
            continue
        served = served or set()
        for rule in config.get("rules") or []:
            for key in ("seriesQuery", "metricsQuery", "resources"):
                if key not in rule:
                    errors.append(f"{cm.where()}: adapter rule {rule.get('seriesQuery')} lacks {key}")
            name = rule.get("name") or {}
            if "as" in name:
                served.add(name["as"])
            else:
                m = re.match(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", rule.get("seriesQuery", ""))
                if m:
                    served.add(m.group(1))
    return served


def dockerfile_uid(path: str) -> Optional[int]:
    """The numeric uid of the last USER in a Dockerfile, if any."""
    uid = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\s*USER\s+(\d+)", line)
            if m:
                uid = int(m.group(1))
    return uid


def image_errors(dockerfile_text: str, docker_config: Dict[str, Any]) -> List[str]:
    """Checks that the Dockerfile's final stage and deploy/docker/inferd.yaml agree."""
    errors = []
    final = re.split(r"(?im)^\s*FROM\s", dockerfile_text)[-1]
    joined = re.sub(r"\\\n", " ", final)
    server = (docker_config or {}).get("server") or {}
    grpc_host, grpc_port = _host_port(server.get("grpc_listen", DAEMON_DEFAULT_GRPC_LISTEN))
    metrics_host, metrics_port = _host_port(server.get("metrics_listen", "127.0.0.1:9464"))
    for what, host in (("grpc_listen", grpc_host), ("metrics_listen", metrics_host)):
        if _is_loopback(host):
            errors.append(f"deploy/docker/inferd.yaml: server.{what} binds loopback; a container must bind "
                          "0.0.0.0 to be reachable")
    m = re.search(r"(?m)^\s*CMD\s+(\[.*\])\s*$", joined)
    config_path = _flag(yaml.safe_load(m.group(1)), "config") if m else None
    if config_path is None:
        errors.append("Dockerfile: CMD does not pass --config")
    elif not re.search(rf"(?m)^\s*COPY\s+deploy/docker/inferd\.yaml\s+{re.escape(config_path)}\s*$", joined):
        errors.append(f"Dockerfile: no COPY deploy/docker/inferd.yaml {config_path} for the CMD's --config")
    exposed = {int(p.split("/")[0]) for line in re.findall(r"(?m)^\s*EXPOSE\s+(.*)$", joined)
               for p in line.split()}
    for port in (grpc_port, metrics_port):
        if port not in exposed:
            errors.append(f"Dockerfile: EXPOSE lacks port {port} from deploy/docker/inferd.yaml")
    m = re.search(r"(?m)^\s*HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", joined)
    if not m:
        errors.append("Dockerfile: no HEALTHCHECK CMD [...]")
    else:
        command = yaml.safe_load(m.group(1))
        target = _flag(command, "grpc-target") or DAEMON_DEFAULT_GRPC_LISTEN
        if "healthcheck" not in command or _host_port(target)[1] != grpc_port:
            errors.append(f"Dockerfile: HEALTHCHECK {command} does not run `inferd healthcheck` on port {grpc_port}")
    return errors


def kustomization_errors(paths: Iterable[str]) -> List[str]:
    errors = []
    for path in paths:
        if os.path.basename(path) != "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as f:
            k = yaml.safe_load(f) or {}
        for r in k.get("resources") or []:
            if not os.path.exists(os.path.join(os.path.dirname(path), r)):
                errors.append(f"{path}: resource {r} does not exist")
    return errors


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    args = parser.parse_args(argv[1:])
    root = os.path.normpath(args.root)
    paths = sorted(glob.glob(os.path.join(root, "deploy", "k8s", "**", "*.yaml"), recursive=True))
    if not paths:
        print(f"no manifests under {root}/deploy/k8s", file=sys.stderr)
        return 1
    with open(os.path.join(root, "deploy", "docker", "inferd.yaml"), encoding="utf-8") as f:
        docker_config = yaml.safe_load(f) or {}
    ctx = Context(docker_config=docker_config, dockerfile_uid=dockerfile_uid(os.path.join(root, "Dockerfile")))
    manifests = [p for p in paths if os.path.basename(p) != "kustomization.yaml"]
    with open(os.path.join(root, "Dockerfile"), encoding="utf-8") as f:
        dockerfile_text = f.read()
    errors = (kustomization_errors(paths) + image_errors(dockerfile_text, docker_config) +
              check(load(manifests), ctx))
    for e in errors:
        print(os.path.relpath(e.split(":", 1)[0], root) + ":" + e.split(":", 1)[1]
              if e.startswith(root) else e)
    print(f"{len(manifests)} manifests, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
