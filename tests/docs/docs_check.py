#!/usr/bin/env python3
"""Checks that the documentation stands on its own inside the repository.

  * every relative link in README.md and docs/*.md ([text](path) and
    [label]: path) resolves to a file or folder in the repository; anchors
    (#...) and web links are ignored, links in fenced code are not links;
  * no link points into the filesystem (/..., file:, ~/...);
  * every `docs/NAME.md` mentioned in README.md or docs/*.md exists;
  * no tracked text file mentions the parent folder's shared/ tree;
  * core/ server/ clients/ configs/ docs/ README.md never speak of "the
    seed" / "seed's" (a random-number seed is another word).

    docs_check.py ROOT        check the repository at ROOT
    docs_check.py --selftest  check that each rule catches a planted error

Exit 0 when clean, 1 with one line per problem otherwise.
"""

import os
import re
import subprocess
import sys
import tempfile

# Built from pieces so that this file does not trip its own rule.
SHARED_REF = ".." + "/shared"
ORIGIN_WORDS = re.compile(r"\bthe\s+" + "seed" + r"\b|\b" + "seed" + r"'s\b", re.IGNORECASE)
ORIGIN_SCOPE = ("core/", "server/", "clients/", "configs/", "docs/", "README.md")

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
DOC_MENTION = re.compile(r"(?<![\w/.])docs/([A-Za-z0-9_.-]+\.md)\b")
WEB = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//|^(?:https?|mailto|ftp):", re.IGNORECASE)


def tracked_files(root):
    """Paths (relative, '/'-separated) of the repository's files: git's list
    when ROOT is a checkout, else every file outside build folders."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                             capture_output=True).stdout
        files = [f for f in out.decode("utf-8", "replace").split("\0") if f]
        if files:
            return [f for f in files if os.path.isfile(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        dirs[:] = [x for x in dirs if not x.startswith(".") and not
                   (rel == "." and x.startswith("build"))]
        for n in names:
            files.append(os.path.normpath(os.path.join(rel, n)).replace(os.sep, "/"))
    return files


def read_text(path):
    """The file's text, or None for a binary file."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def outside_fences(text):
    """Yields (line number, line) for the lines outside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            if fence is None:
                fence = m.group(1)[0] * 3
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, line


def check_doc(root, rel):
    """Problems with the links and doc mentions of one markdown file."""
    problems = []
    text = read_text(os.path.join(root, rel))
    base = os.path.dirname(os.path.join(root, rel))
    real_root = os.path.realpath(root)
    for n, line in outside_fences(text):
        targets = INLINE_LINK.findall(line)
        m = REFERENCE_LINK.match(line)
        if m:
            targets.append(m.group(1))
        for target in targets:
            where = f"{rel}:{n}: link '{target}'"
            if target.startswith(("/", "~", "file:")) or re.match(r"^[A-Za-z]:[\\/]", target):
                problems.append(f"{where} points into the filesystem")
                continue
            if WEB.match(target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0].split("?", 1)[0]
            resolved = os.path.realpath(os.path.join(base, path))
            if os.path.commonpath([resolved, real_root]) != real_root:
                problems.append(f"{where} leaves the repository")
            elif not os.path.exists(resolved):
                problems.append(f"{where} does not resolve to a file in the repository")
        for name in DOC_MENTION.findall(line):
            if not os.path.isfile(os.path.join(root, "docs", name)):
                problems.append(f"{rel}:{n}: mentions docs/{name}, which does not exist")
    return problems


def check(root):
    problems = []
    files = tracked_files(root)
    docs = [f for f in files if f == "README.md" or re.fullmatch(r"docs/[^/]+\.md", f)]
    if "README.md" not in docs:
        problems.append("README.md: missing")
    for rel in sorted(docs):
        problems.extend(check_doc(root, rel))
    for rel in sorted(files):
        text = read_text(os.path.join(root, rel))
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if SHARED_REF in line:
                problems.append(f"{rel}:{n}: refers to {SHARED_REF}, outside the repository")
            if rel.startswith(ORIGIN_SCOPE) and ORIGIN_WORDS.search(line):
                problems.append(f"{rel}:{n}: says '{ORIGIN_WORDS.search(line).group(0)}':"
                                " say what the thing is and does")
    return problems


def selftest():
    """Each rule catches its planted error, and a clean tree passes."""
    clean = {
        "README.md": "See [the docs](docs/A.md#top) and `docs/A.md`.\n",
        "docs/A.md": "Back to [README](../README.md), [web](https://example.com),\n"
                     "[code](../core/x.cc).\n```\n[not a link](nowhere.md)\n```\n",
        "core/x.cc": "// A random-number seed stays: rng(seed).\n",
    }
    planted = {
        "missing file": ("docs/A.md", "[gone](B.md)\n"),
        "absolute link": ("docs/A.md", "[abs](/etc/passwd)\n"),
        "outside the repository": ("README.md", "[out](../../elsewhere.md)\n"),
        "reference link": ("docs/A.md", "[ref]: missing.md\n"),
        "doc mention": ("README.md", "see `docs/MISSING.md`\n"),
        "shared tree": ("scripts/run.sh", "tool " + SHARED_REF + "/tools/x\n"),
        "origin words": ("server/y.cc", "// The " + "seed's API.\n"),
    }
    failures = []

    def run(files):
        with tempfile.TemporaryDirectory() as d:
            root = os.path.join(d, "repo")
            for rel, text in files.items():
                path = os.path.join(root, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            return check(root)

    got = run(clean)
    if got:
        failures.append(f"clean tree reported: {got}")
    for name, (rel, extra) in planted.items():
        files = dict(clean)
        files[rel] = files.get(rel, "") + extra
        if not run(files):
            failures.append(f"planted {name} in {rel} was not reported")
    for f in failures:
        print("selftest:", f)
    return 1 if failures else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--selftest":
        return selftest()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    print(f"docs_check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
