"""Runs README.md's "Talking to it" examples against a daemon started as the
README starts it (its defaults; only the ports are free ones instead of
50051/9464, and the commands are rewritten to those ports):

  * the inferctl / curl block runs as a bash script;
  * each grpcurl line is parsed as grpcurl parses it (flags, address, then
    list | describe SYMBOL | METHOD) and executed through server reflection
    with the same JSON (grpcurl is not packaged for Debian 12);
  * the Python block runs as a file with PYTHONPATH=<build>/python, the
    layout the README tells users to use.

The blocks are read from README.md here, so the README and the test cannot
drift apart.
"""

import base64
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import urllib.request

import grpc
import pytest

from conftest import Daemon

README_TARGET = "127.0.0.1:50051"
README_METRICS = "127.0.0.1:9464"


def _readme():
    source = os.environ.get("INFERD_SOURCE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(source, "README.md")) as f:
        return f.read()


def _blocks():
    text = _readme()
    start = text.index("## Talking to it")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _shell_block(word):
    blocks = [body for lang, body in _blocks() if lang == "sh" and word in body]
    assert len(blocks) == 1, "expected one sh block with %s in 'Talking to it'" % word
    return blocks[0]


@pytest.fixture(scope="module")
def readme_daemon():
    d = Daemon(["--grpc-listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"])
    yield d
    d.stop()


def test_readme_section_has_every_kind_of_example():
    langs = [lang for lang, _ in _blocks()]
    assert langs.count("python") == 1
    assert "build/bin/inferctl" in _shell_block("inferctl")
    grpcurl = [l for l in _shell_block("grpcurl").splitlines() if l.startswith("grpcurl")]
    verbs = " ".join(grpcurl)
    for needed in (" list", " describe ", "Health/Check", "/ModelInfer", "/GetPerformanceReport"):
        assert needed in verbs, needed


def test_inferctl_and_curl_commands_run_verbatim(readme_daemon, tmp_path):
    bindir = os.path.dirname(os.environ["INFERD_INFERCTL"])
    script = _shell_block("inferctl")
    script = script.replace("build/bin/inferctl",
                            "%s/inferctl --target=%s" % (bindir, readme_daemon.target))
    script = script.replace(README_TARGET, readme_daemon.target)
    metrics = "127.0.0.1:%d" % readme_daemon.metrics_port
    if shutil.which("curl") is None:  # checked below with urllib instead
        script = "\n".join(l for l in script.splitlines() if not l.startswith("curl "))
    script = script.replace(README_METRICS, metrics)
    path = tmp_path / "talking_to_it.sh"
    path.write_text("set -euo pipefail\n" + script)
    r = subprocess.run(["bash", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout
    assert "SERVING" in r.stdout
    assert "OUTPUT0 FP32 [2]: 4,6" in r.stdout
    assert "OUTPUT0 FP32 [3]: 10,20,30" in r.stdout
    assert "-> host: 1,2,3,4" in r.stdout
    assert "inferd_" in r.stdout or shutil.which("curl") is None
    body = urllib.request.urlopen("http://%s/metrics" % metrics, timeout=30).read().decode()
    assert "inferd_" in body


def _parse_grpcurl(line):
    """Splits a grpcurl command line as grpcurl (Go's flag package) does:
    flags first, then the address, then list [SVC] | describe SYM | METHOD."""
    argv = shlex.split(line)
    assert argv[0] == "grpcurl", line
    i, data, plaintext = 1, None, False
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "-plaintext":
            plaintext = True
        elif argv[i] == "-d":
            i += 1
            data = argv[i]
        else:
            pytest.fail("grpcurl flag %s is not one this test knows: %s" % (argv[i], line))
        i += 1
    assert plaintext, "the daemon serves plaintext; grpcurl needs -plaintext: " + line
    address, rest = argv[i], argv[i + 1:]
    assert rest, "grpcurl needs a verb or a method: " + line
    return address, data, rest


def _raw_fp32(b64):
    raw = base64.b64decode(b64)
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def test_grpcurl_commands_work_through_reflection(readme_daemon):
    from inferd_client.reflection import ReflectionClient, response_dict

    lines = [l for l in _shell_block("grpcurl").splitlines() if l.startswith("grpcurl")]
    assert lines
    channel = grpc.insecure_channel(readme_daemon.target)
    reflection = ReflectionClient(channel)
    checked = set()
    for line in lines:
        address, data, rest = _parse_grpcurl(line)
        assert address == README_TARGET, line
        if rest[0] == "list":
            services = reflection.list_services()
            for s in ("grpc.health.v1.Health", "inference.GRPCInferenceService",
                      "inferd.v1.Memory", "inferd.v1.Report", "inferd.v1.Scaling",
                      "grpc.reflection.v1alpha.ServerReflection"):
                assert s in services, (s, services)
            checked.add("list")
        elif rest[0] == "describe":
            text = reflection.describe_text(rest[1])
            assert "is a service" in text and "rpc " in text, text
            checked.add("describe")
        else:
            assert len(rest) == 1 and "/" in rest[0], line
            out = response_dict(reflection.invoke_json(rest[0], data or "{}"))
            method = rest[0].rsplit("/", 1)[1]
            if method == "Check":
                assert out == {"status": "SERVING"}
            elif method == "ModelInfer":
                assert out["outputs"][0]["name"] == "OUTPUT0"
                assert _raw_fp32(out["rawOutputContents"][0]) == [4.0, 6.0]
            elif method in ("GetMemoryStats", "GetPerformanceReport"):
                assert out["devices"], out
            checked.add(method)
    assert {"list", "describe", "Check", "ModelInfer", "GetPerformanceReport"} <= checked
    channel.close()


def test_python_example_runs_verbatim(readme_daemon, tmp_path):
    code = [body for lang, body in _blocks() if lang == "python"][0]
    assert README_TARGET in code
    path = tmp_path / "example.py"
    path.write_text(code.replace(README_TARGET, readme_daemon.target))
    env = dict(os.environ)
    # The README's layout: the package and its stubs side by side in
    # <build>/python, found without INFERD_PYTHON_STUBS.
    env["PYTHONPATH"] = os.environ["INFERD_PYTHON_INSTALLED"]
    env.pop("INFERD_PYTHON_STUBS", None)
    r = subprocess.run([sys.executable, str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120, env=env,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout
    assert "serving: True" in r.stdout
    assert "add: [4.0, 6.0]" in r.stdout
    assert "round trip: [[1.0, 2.0], [3.0, 4.0]]" in r.stdout
    assert "task: {'OUTPUT0': [10.0, 20.0, 30.0]}" in r.stdout
    assert "transfer: SUCCEEDED" in r.stdout
    assert "devices: [" in r.stdout


def _section_blocks(title):
    text = _readme()
    start = text.index("## " + title)
    end = text.find("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end], re.S)


def test_serve_your_own_model_runs_verbatim(tmp_path):
    """The "Serve your own model" steps, in a fresh folder: the generator and
    the daemon line as written (plus free ports), then the second shell's
    commands against that daemon."""
    bindir = os.path.dirname(os.environ["INFERD_INFERCTL"])
    blocks = [body for lang, body in _section_blocks("Serve your own model") if lang == "sh"]
    assert len(blocks) == 2, blocks
    setup = [l for l in blocks[0].splitlines() if l.strip()]
    assert len(setup) == 2 and setup[1].startswith("build/bin/inferd ")
    gen = subprocess.run(setup[0].replace("build/bin/", bindir + "/"), shell=True, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr
    args = ["--grpc-listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"]
    for a in shlex.split(setup[1])[1:]:
        if a.startswith("--model-repository="):  # relative to the folder the steps run in
            a = "--model-repository=" + str(tmp_path / a.split("=", 1)[1])
        args.append(a)
    d = Daemon(args)
    try:
        script = blocks[1].replace("build/bin/inferctl",
                                   "%s/inferctl --target=%s" % (bindir, d.target))
        r = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "my_mlp" in r.stdout
        assert "OUTPUT0" in r.stdout
    finally:
        d.stop()
