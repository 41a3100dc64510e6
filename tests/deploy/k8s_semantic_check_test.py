#!/usr/bin/env python3
"""Unit tests for k8s_semantic_check.py: the real manifests pass, and each
rule fails on a copy of them broken in one place."""

import copy
import glob
import os
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import k8s_semantic_check as k8s  # noqa: E402


def _real_docs():
    paths = sorted(p for p in glob.glob(os.path.join(ROOT, "deploy", "k8s", "**", "*.yaml"), recursive=True)
                   if os.path.basename(p) != "kustomization.yaml")
    return k8s.load(paths)


def _context():
    with open(os.path.join(ROOT, "deploy", "docker", "inferd.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    return k8s.Context(docker_config=config, dockerfile_uid=k8s.dockerfile_uid(os.path.join(ROOT, "Dockerfile")))


class SemanticCheckTest(unittest.TestCase):

    def setUp(self):
        self.docs = copy.deepcopy(_real_docs())
        self.ctx = _context()

    def find(self, kind, name):
        return next(d.obj for d in self.docs if d.kind == kind and d.name == name)

    def daemon(self):
        return self.find("Deployment", "inferd")["spec"]["template"]["spec"]["containers"][0]

    def sidecar(self):
        return self.find("Deployment", "my-app")["spec"]["template"]["spec"]["initContainers"][0]

    def assertProblem(self, fragment):
        errors = k8s.check(self.docs, self.ctx)
        self.assertTrue(any(fragment in e for e in errors), f"no problem with {fragment!r} in {errors}")

    def test_repository_manifests_pass(self):
        self.assertEqual(k8s.check(self.docs, self.ctx), [])

    def test_kustomization_resources_exist(self):
        paths = glob.glob(os.path.join(ROOT, "deploy", "k8s", "**", "kustomization.yaml"), recursive=True)
        self.assertTrue(paths)
        self.assertEqual(k8s.kustomization_errors(paths), [])

    def test_unknown_kind_fails(self):
        self.find("Service", "inferd")["apiVersion"] = "v2"
        self.assertProblem("unknown apiVersion/kind v2/Service")

    def test_selector_not_matching_template_fails(self):
        self.find("Deployment", "inferd")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "x"
        self.assertProblem("do not match the template labels")

    def test_long_port_name_fails(self):
        self.daemon()["ports"][1]["name"] = "prometheus-metrics"
        self.assertProblem("is not an IANA service name")

    def test_grpc_probe_on_undeclared_port_fails(self):
        self.daemon()["readinessProbe"] = {"grpc": {"port": 50052, "service": "inferd"}}
        self.assertProblem("readinessProbe.grpc.port 50052 is not a containerPort")

    # kubelet's grpc probes speak plain text; a daemon with server.tls answers
    # only TLS.
    def test_grpc_probe_on_tls_daemon_fails(self):
        self.daemon()["readinessProbe"] = {"grpc": {"port": 50051, "service": "inferd"}}
        self.assertProblem("readinessProbe is a grpc probe but gRPC speaks TLS")

    def test_plain_healthcheck_on_tls_daemon_fails(self):
        command = self.daemon()["livenessProbe"]["exec"]["command"]
        self.daemon()["livenessProbe"]["exec"]["command"] = [c for c in command if c != "--tls"]
        self.assertProblem("livenessProbe runs healthcheck without --tls or --tls-ca")

    def test_probe_with_two_handlers_fails(self):
        self.daemon()["livenessProbe"]["tcpSocket"] = {"port": 50051}
        self.assertProblem("needs exactly one of")

    # Verifies the loopback rule: kubelet's grpc probe dials the Pod IP, which a
    # daemon bound to 127.0.0.1 does not answer.
    def test_loopback_sidecar_with_grpc_probe_fails(self):
        self.sidecar()["readinessProbe"] = {"grpc": {"port": 50051, "service": "inferd"}}
        self.sidecar()["ports"].append({"name": "grpc", "containerPort": 50051})
        self.assertProblem("(loopback) but readinessProbe is not an exec probe")

    def test_loopback_bind_from_configmap_is_detected(self):
        cm = self.find("ConfigMap", "inferd-config")
        cm["data"]["inferd.yaml"] = cm["data"]["inferd.yaml"].replace("0.0.0.0:50051", "127.0.0.1:50051")
        self.daemon()["startupProbe"] = {"grpc": {"port": 50051, "service": "inferd"}}
        self.assertProblem("(loopback) but startupProbe is not an exec probe")

    def test_healthcheck_on_wrong_port_fails(self):
        self.sidecar()["livenessProbe"]["exec"]["command"] = [
            "/usr/local/bin/inferd", "healthcheck", "--grpc-target=127.0.0.1:6000", "--service=inferd"]
        self.assertProblem("livenessProbe checks 127.0.0.1:6000 but gRPC listens on 127.0.0.1:50051")

    def test_restart_policy_on_app_container_fails(self):
        self.find("Deployment", "my-app")["spec"]["template"]["spec"]["containers"][0]["restartPolicy"] = "Always"
        self.assertProblem("sets restartPolicy; only init containers may")

    def test_sidecar_without_always_fails(self):
        self.sidecar()["restartPolicy"] = "OnFailure"
        self.assertProblem("restartPolicy must be Always")

    def test_plain_init_container_with_probes_fails(self):
        del self.sidecar()["restartPolicy"]
        self.assertProblem("has probes but is not a sidecar")

    def test_root_filesystem_writable_fails(self):
        self.daemon()["securityContext"]["readOnlyRootFilesystem"] = False
        self.assertProblem("readOnlyRootFilesystem must be true")

    def test_run_as_non_root_missing_fails(self):
        del self.find("Deployment", "inferd")["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
        del self.daemon()["securityContext"]["runAsNonRoot"]
        self.assertProblem("runAsNonRoot must be true")

    def test_uid_differing_from_dockerfile_fails(self):
        self.find("Deployment", "inferd")["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 1000
        self.assertProblem("runAsUser 1000 differs from the Dockerfile's USER")

    def test_missing_gpu_limit_fails(self):
        del self.daemon()["resources"]["limits"]["nvidia.com/gpu"]
        self.assertProblem("resources.limits has no nvidia.com/gpu")

    def test_shutdown_longer_than_grace_period_fails(self):
        self.find("Deployment", "inferd")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20
        self.assertProblem("exceed terminationGracePeriodSeconds 20")

    def test_missing_pre_stop_fails(self):
        del self.daemon()["lifecycle"]
        self.assertProblem("needs a preStop hook")

    def test_service_target_port_unknown_fails(self):
        self.find("Service", "inferd")["spec"]["ports"][1]["targetPort"] = "prom"
        self.assertProblem("targetPort prom names no container port")

    def test_grpc_port_without_app_protocol_fails(self):
        del self.find("Service", "inferd")["spec"]["ports"][0]["appProtocol"]
        self.assertProblem("port grpc needs appProtocol: grpc")

    def test_service_selecting_nothing_fails(self):
        self.find("Service", "inferd")["spec"]["selector"] = {"app": "nothing"}
        self.assertProblem("matches no Pod template")

    def test_service_monitor_port_missing_fails(self):
        self.find("ServiceMonitor", "inferd")["spec"]["endpoints"][0]["port"] = "http-metrics"
        self.assertProblem("endpoint port http-metrics is not a port of Service inferd")

    def test_pod_monitor_selecting_nothing_fails(self):
        self.find("PodMonitor", "inferd-sidecar")["spec"]["selector"]["matchLabels"] = {"inferd/sidecar": "yes"}
        self.assertProblem("matches no Pod template in the set")

    def test_pod_monitor_port_missing_fails(self):
        self.find("PodMonitor", "inferd-sidecar")["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
        self.assertProblem("port metrics names no container port")

    def test_hpa_metric_not_served_by_adapter_fails(self):
        self.find("HorizontalPodAutoscaler", "inferd")["spec"]["metrics"][0]["pods"]["metric"]["name"] = "x_total"
        self.assertProblem("metric x_total is not served by the prometheus-adapter rules")

    def test_hpa_target_missing_fails(self):
        self.find("HorizontalPodAutoscaler", "inferd")["spec"]["scaleTargetRef"]["name"] = "inferd-gpu"
        self.assertProblem("scaleTargetRef Deployment/inferd-gpu is not in the set")

    def test_hpa_min_above_max_fails(self):
        self.find("HorizontalPodAutoscaler", "inferd")["spec"]["minReplicas"] = 9
        self.assertProblem("minReplicas 9 > maxReplicas 8")

    def test_scaled_object_query_without_advice_fails(self):
        trigger = self.find("ScaledObject", "inferd")["spec"]["triggers"][0]
        trigger["metadata"]["query"] = "sum(inferd_scheduler_queue_length)"
        self.assertProblem("does not use inferd_scaler_desired_replicas")

    def test_pdb_with_both_bounds_fails(self):
        self.find("PodDisruptionBudget", "inferd")["spec"]["minAvailable"] = 1
        self.assertProblem("set exactly one of minAvailable and maxUnavailable")

    def test_configmap_drifting_from_image_config_fails(self):
        cm = self.find("ConfigMap", "inferd-config")
        cm["data"]["inferd.yaml"] = cm["data"]["inferd.yaml"].replace("15.0", "25.0")
        self.assertProblem("differ from deploy/docker/inferd.yaml")

    def test_missing_configmap_fails(self):
        self.docs = [d for d in self.docs if d.name != "inferd-config"]
        self.assertProblem("uses ConfigMap inferd-config, which is not in the set")

    def test_undeclared_volume_mount_fails(self):
        self.daemon()["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})
        self.assertProblem("mounts volume cache, which is not declared")


class ImageCheckTest(unittest.TestCase):

    def setUp(self):
        with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
            self.dockerfile = f.read()
        self.config = _context().docker_config

    def problems(self):
        return k8s.image_errors(self.dockerfile, self.config)

    def test_repository_image_passes(self):
        self.assertEqual(self.problems(), [])

    def test_loopback_container_config_fails(self):
        self.config["server"]["grpc_listen"] = "127.0.0.1:50051"
        self.assertIn("binds loopback", " ".join(self.problems()))

    def test_healthcheck_on_other_port_fails(self):
        self.dockerfile = self.dockerfile.replace("--grpc-target=127.0.0.1:50051", "--grpc-target=127.0.0.1:6000")
        self.assertIn("HEALTHCHECK", " ".join(self.problems()))

    def test_unexposed_metrics_port_fails(self):
        self.dockerfile = self.dockerfile.replace("EXPOSE 50051 9464", "EXPOSE 50051")
        self.assertIn("EXPOSE lacks port 9464", " ".join(self.problems()))

    def test_config_not_copied_to_cmd_path_fails(self):
        self.dockerfile = self.dockerfile.replace('CMD ["--config=/etc/inferd/inferd.yaml"]',
                                                  'CMD ["--config=/etc/inferd/config.yaml"]')
        self.assertIn("no COPY deploy/docker/inferd.yaml /etc/inferd/config.yaml", " ".join(self.problems()))


if __name__ == "__main__":
    unittest.main()
