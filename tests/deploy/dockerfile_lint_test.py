#!/usr/bin/env python3
"""Unit tests for dockerfile_lint.py: each rule fires on a Dockerfile that
breaks it and stays quiet on one that follows it."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile_lint  # noqa: E402

GOOD = """\
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \\
 && apt-get install -y --no-install-recommends cmake=3.25.1-1 \\
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://example.com/x | tar -xz

FROM debian:12-slim
COPY --from=build /out/ /
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/inferd"]
CMD ["--config=/etc/inferd/inferd.yaml"]
"""


def codes(text):
    return [f.code for f in dockerfile_lint.lint(text)]


class DockerfileLintTest(unittest.TestCase):

    def test_good_dockerfile_is_clean(self):
        self.assertEqual(codes(GOOD), [])

    def test_repository_dockerfile_is_clean(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with open(os.path.join(root, "Dockerfile"), encoding="utf-8") as f:
            self.assertEqual(codes(f.read()), [])

    # DL3002
    def test_root_as_last_user_fails(self):
        self.assertIn("DL3002", codes(GOOD.replace("USER 10001:10001", "USER root")))
        self.assertIn("DL3002", codes(GOOD.replace("USER 10001:10001", "USER 0:0")))

    # Verifies that only the final stage's USER matters: a builder may be root.
    def test_root_in_build_stage_only_passes(self):
        text = GOOD.replace("FROM debian:12 AS build\n", "FROM debian:12 AS build\nUSER root\n")
        self.assertEqual(codes(text), [])

    # DL3006
    def test_untagged_image_fails(self):
        self.assertIn("DL3006", codes(GOOD.replace("FROM debian:12-slim", "FROM debian")))

    def test_registry_port_is_not_a_tag(self):
        text = GOOD.replace("FROM debian:12-slim", "FROM registry.local:5000/debian")
        self.assertIn("DL3006", codes(text))

    def test_digest_and_stage_alias_pass(self):
        text = GOOD.replace("FROM debian:12-slim", "FROM debian@sha256:" + "a" * 64)
        self.assertEqual(codes(text), [])
        text = GOOD.replace("FROM debian:12-slim", "FROM build")
        self.assertEqual(codes(text), [])

    def test_arg_default_is_resolved_in_from(self):
        text = "ARG BASE=debian\n" + GOOD.replace("FROM debian:12-slim", "FROM ${BASE}")
        self.assertIn("DL3006", codes(text))
        text = "ARG BASE=debian:12-slim\n" + GOOD.replace("FROM debian:12-slim", "FROM ${BASE}")
        self.assertEqual(codes(text), [])

    # DL3007
    def test_latest_tag_fails(self):
        self.assertIn("DL3007", codes(GOOD.replace("FROM debian:12-slim", "FROM debian:latest")))

    # DL3008
    def test_unpinned_package_fails(self):
        self.assertIn("DL3008", codes(GOOD.replace("cmake=3.25.1-1", "cmake")))

    def test_ignore_pragma_skips_a_rule(self):
        text = GOOD.replace("RUN apt-get update", "# hadolint ignore=DL3008\nRUN apt-get update")
        self.assertEqual(codes(text.replace("cmake=3.25.1-1", "cmake")), [])

    # DL3009
    def test_apt_lists_left_behind_fails(self):
        text = GOOD.replace(" \\\n && rm -rf /var/lib/apt/lists/*", "")
        self.assertIn("DL3009", codes(text))

    # Verifies that the lists must go in the same RUN as the install.
    def test_apt_lists_removed_in_a_later_run_fails(self):
        text = GOOD.replace(" \\\n && rm -rf /var/lib/apt/lists/*", "\nRUN rm -rf /var/lib/apt/lists/*")
        self.assertIn("DL3009", codes(text))

    # DL3015
    def test_missing_no_install_recommends_fails(self):
        self.assertIn("DL3015", codes(GOOD.replace(" --no-install-recommends", "")))

    def test_install_recommends_option_passes(self):
        text = GOOD.replace("--no-install-recommends", "-o APT::Install-Recommends=false")
        self.assertEqual(codes(text), [])

    # DL3025
    def test_shell_form_cmd_fails(self):
        self.assertIn("DL3025", codes(GOOD.replace('CMD ["--config=/etc/inferd/inferd.yaml"]',
                                                   "CMD --config=/etc/inferd/inferd.yaml")))

    def test_shell_form_entrypoint_fails(self):
        self.assertIn("DL3025", codes(GOOD.replace('ENTRYPOINT ["/usr/local/bin/inferd"]',
                                                   "ENTRYPOINT /usr/local/bin/inferd")))

    # DL4006
    def test_pipe_without_pipefail_fails(self):
        text = GOOD.replace('SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n', "")
        self.assertIn("DL4006", codes(text))

    # Verifies that SHELL is per stage: a pipe in the second stage needs its own.
    def test_pipefail_does_not_carry_into_next_stage(self):
        text = GOOD.replace("COPY --from=build /out/ /\n",
                            "COPY --from=build /out/ /\nRUN ldd /usr/local/bin/inferd | grep -q cudart\n")
        self.assertEqual(codes(text), ["DL4006"])

    def test_logical_or_and_quoted_pipe_are_not_pipes(self):
        text = GOOD.replace('SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n', "")
        text = text.replace("RUN curl -fsSL https://example.com/x | tar -xz",
                            "RUN test -f /x || echo 'a|b' > /y")
        self.assertEqual(codes(text), [])

    # INF001
    def test_named_user_fails(self):
        self.assertEqual(codes(GOOD.replace("USER 10001:10001", "USER inferd")), ["INF001"])

    def test_no_user_fails(self):
        self.assertEqual(codes(GOOD.replace("USER 10001:10001\n", "")), ["INF001"])

    def test_findings_carry_line_numbers(self):
        findings = dockerfile_lint.lint(GOOD.replace("FROM debian:12-slim", "FROM debian:latest"))
        self.assertEqual([(f.line, f.code) for f in findings], [(8, "DL3007")])


if __name__ == "__main__":
    unittest.main()
