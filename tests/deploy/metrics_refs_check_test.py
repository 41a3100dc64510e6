#!/usr/bin/env python3
"""Unit tests for metrics_refs_check.py: the repository's rules and dashboard
pass, and a broken copy of them fails for each rule."""

import io
import json
import os
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import metrics_refs_check as mrc  # noqa: E402


class MetricNamesTest(unittest.TestCase):

    def test_strips_functions_labels_and_grouping(self):
        expr = ('histogram_quantile(0.99, sum by (priority, le) '
                '(rate(inferd_scheduler_queue_duration_seconds_bucket{job=~"a|b", le="0.1"}[5m])))')
        self.assertEqual(mrc.metric_names(expr), {"inferd_scheduler_queue_duration_seconds_bucket"})

    def test_keeps_recording_rule_names_and_both_sides(self):
        expr = "inferd:x:ratio > on (job) count by (job) (up == 1) and inferd_device_healthy"
        self.assertEqual(mrc.metric_names(expr), {"inferd:x:ratio", "up", "inferd_device_healthy"})

    def test_raw_counter_is_flagged(self):
        known = {"inferd_grpc_requests_total": "counter"}
        self.assertTrue(mrc.counter_misuse("sum(inferd_grpc_requests_total)", known))
        self.assertFalse(mrc.counter_misuse("rate(inferd_grpc_requests_total{a=\"b\"}[5m])", known))


class RepositoryCheckTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp()
        for sub in ("deploy/prometheus", "deploy/grafana"):
            shutil.copytree(os.path.join(ROOT, sub), os.path.join(self.root, sub))
        os.makedirs(os.path.join(self.root, "docs"))
        shutil.copy(os.path.join(ROOT, "docs", "METRICS.md"), os.path.join(self.root, "docs"))
        self.dashboard_path = os.path.join(self.root, "deploy/grafana/inferd-dashboard.json")
        with open(self.dashboard_path, encoding="utf-8") as f:
            self.dashboard = json.load(f)

    def tearDown(self):
        shutil.rmtree(self.root)

    def run_check(self, *flags):
        with open(self.dashboard_path, "w", encoding="utf-8") as f:
            json.dump(self.dashboard, f)
        out = io.StringIO()
        with redirect_stdout(out):
            status = mrc.main(["metrics_refs_check.py", "--root", self.root, *flags])
        return status, out.getvalue()

    def first_query_panel(self):
        return next(p for p in self.dashboard["panels"] if p.get("targets"))

    def test_repository_passes(self):
        self.assertEqual(self.run_check()[0], 0)

    def test_unknown_metric_fails(self):
        self.first_query_panel()["targets"][0]["expr"] = "inferd_device_memory_free_bytes"
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("unknown metric inferd_device_memory_free_bytes", out)

    def test_metric_missing_from_dashboard_fails(self):
        self.dashboard["panels"] = [p for p in self.dashboard["panels"]
                                    if "inferd_comm_bandwidth_bytes_per_second" not in json.dumps(p)]
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("no panel shows inferd_comm_bandwidth_bytes_per_second", out)

    def test_undocumented_name_in_an_alert_fails(self):
        path = os.path.join(self.root, "deploy/prometheus/inferd-rules.yaml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("inferd_scheduler_device_healthy", "inferd_device_healthy"))
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("inferd_device_healthy is not a series of docs/METRICS.md", out)

    def test_undocumented_name_elsewhere_in_deploy_fails(self):
        os.makedirs(os.path.join(self.root, "deploy/k8s"))
        with open(os.path.join(self.root, "deploy/k8s/adapter.yaml"), "w", encoding="utf-8") as f:
            f.write("seriesQuery: 'inferd_queue_depth{namespace!=\"\"}'\n")
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("deploy/k8s/adapter.yaml: inferd_queue_depth is not a series", out)

    def test_a_family_dropped_from_the_doc_fails(self):
        path = os.path.join(self.root, "docs", "METRICS.md")
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if "`inferd_model_pending_requests`" not in line]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines)
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("inferd_model_pending_requests gauge is not in docs/METRICS.md", out)

    def test_duplicate_panel_id_fails(self):
        self.dashboard["panels"][2]["id"] = self.dashboard["panels"][1]["id"]
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("duplicate id", out)

    def test_quantile_over_non_bucket_fails(self):
        self.first_query_panel()["targets"][0]["expr"] = (
            "histogram_quantile(0.9, rate(inferd_grpc_request_duration_seconds_sum[5m]))")
        status, out = self.run_check()
        self.assertEqual(status, 1)
        self.assertIn("histogram_quantile over something other than _bucket", out)

    @unittest.skipUnless(shutil.which("promtool"), "promtool is not installed")
    def test_unparsable_query_fails_promql_mode(self):
        self.first_query_panel()["targets"][0]["expr"] = "sum(rate(inferd_grpc_requests_total[5m])"
        status, _ = self.run_check("--promql")
        self.assertEqual(status, 1)

    @unittest.skipUnless(shutil.which("promtool"), "promtool is not installed")
    def test_repository_parses_in_promql_mode(self):
        self.assertEqual(self.run_check("--promql")[0], 0)


if __name__ == "__main__":
    unittest.main()
