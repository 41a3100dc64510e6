#!/usr/bin/env python3
"""Checks, without Docker, that the image puts the backend libraries where the
daemon looks for them and the model repository where the config points.

Read from the sources themselves:
  * Dockerfile: the folder `inferd` is copied to (cp ... inferd ... DIR) and
    the folder the libinferd_*.so files are copied to (find ... -exec cp {} DIR);
    the model folders copied under /out (cp -r ... DIR);
  * core/models/dynamic_library.cc: the search path relative to the
    executable's folder ("/../lib/");
  * deploy/docker/inferd.yaml: models.repository.
Exit 0 when they agree, 1 with one line per problem.
"""
import os
import posixpath
import re
import sys

import yaml


def check(root):
    errors = []
    with open(os.path.join(root, "Dockerfile"), encoding="utf-8") as f:
        dockerfile = re.sub(r"\\\n", " ", f.read())
    with open(os.path.join(root, "core/models/dynamic_library.cc"), encoding="utf-8") as f:
        loader = f.read()
    with open(os.path.join(root, "deploy/docker/inferd.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}

    def installed(path):  # a path under the build stage's /out is that path in the image
        return "/" + path[len("/out/"):].strip("/") if path.startswith("/out/") else None

    m = re.search(r"\bcp\s+(?:\S*/)?bin/inferd\b[^&;]*?\s(/out/\S+?)/?(?:\s|$)", dockerfile)
    bin_dir = installed(m.group(1)) if m else None
    if bin_dir is None:
        errors.append("Dockerfile: found no `cp .../bin/inferd ... /out/DIR` for the daemon")
    m = re.search(r"find\s+\S+\s+-name\s+'libinferd_\*\.so'\s+-exec\s+cp\s+\{\}\s+(/out/\S+?)/?\s", dockerfile)
    lib_dir = installed(m.group(1)) if m else None
    if lib_dir is None:
        errors.append("Dockerfile: found no `find ... -name 'libinferd_*.so' -exec cp {} /out/DIR` "
                      "for the backend libraries")
    rel = re.search(r'exe_dir,\s*"(/[^"]*)/",\s*file_name', loader)
    if rel is None:
        errors.append("core/models/dynamic_library.cc: found no search path relative to the executable")
    if bin_dir and lib_dir and rel:
        searched = posixpath.normpath(bin_dir + rel.group(1))
        if searched != posixpath.normpath(lib_dir):
            errors.append(f"Dockerfile installs backend libraries in {lib_dir} but the daemon "
                          f"({bin_dir}/inferd) searches {searched}")
    repository = ((config.get("models") or {}).get("repository")) or ""
    if repository:
        copies = [installed(d) for d in re.findall(r"\bcp\s+-r\s+\S+\s+(/out/\S+?)/?(?:\s|$)", dockerfile)]
        if not any(c and posixpath.normpath(c) == posixpath.normpath(repository) for c in copies):
            errors.append(f"deploy/docker/inferd.yaml: models.repository {repository} is not a folder "
                          f"the Dockerfile fills (cp -r ... /out{repository}/)")
    return errors


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    errors = check(os.path.normpath(root))
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
