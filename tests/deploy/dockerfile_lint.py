#!/usr/bin/env python3
"""Lints a Dockerfile with a subset of hadolint's rules.

hadolint is packaged neither in Debian 12 nor on npm, so this checker
implements the rules inferd's image must follow, with hadolint's codes:

  DL3002  the last USER of the final stage is not root
  DL3006  FROM names an explicit tag or digest
  DL3007  FROM does not use the :latest tag
  DL3008  apt-get install pins every package version (pkg=version)
  DL3009  a RUN with apt-get install also removes /var/lib/apt/lists/*
  DL3015  apt-get install passes --no-install-recommends
  DL3025  CMD and ENTRYPOINT use the JSON (exec) form
  DL4006  a RUN with a pipe comes after SHELL [... "-o", "pipefail" ...]
          in the same stage
  INF001  the final stage sets USER to a numeric uid (Kubernetes
          runAsNonRoot can only verify numeric users)

`# hadolint ignore=DLxxxx[,DLyyyy]` on the line above an instruction skips
those rules for it, as in hadolint.

Usage: dockerfile_lint.py Dockerfile [...]; prints "FILE:LINE CODE message"
per finding and exits 1 when there is one, 0 when clean, 2 on usage errors.
"""

import dataclasses
import json
import re
import sys
from typing import Dict, List, Optional, Set


@dataclasses.dataclass
class Instruction:
    line: int            # 1-based line of the instruction keyword
    keyword: str         # upper-cased, e.g. "RUN"
    args: str            # the rest, continuation lines joined with spaces
    ignored: Set[str]    # rule codes from a "# hadolint ignore=" pragma


@dataclasses.dataclass
class Finding:
    line: int
    code: str
    message: str


_IGNORE_RE = re.compile(r"#\s*hadolint\s+ignore=([A-Z0-9, ]+)")


def parse(text: str) -> List[Instruction]:
    """Splits a Dockerfile into instructions (comments and blank lines dropped,
    backslash continuations joined)."""
    instructions: List[Instruction] = []
    pending_ignore: Set[str] = set()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            m = _IGNORE_RE.match(stripped)
            if m:
                pending_ignore |= {c.strip() for c in m.group(1).split(",") if c.strip()}
            i += 1
            continue
        start = i
        parts = []
        current = raw.rstrip()
        while current.endswith("\\"):
            parts.append(current[:-1])
            i += 1
            # Comment lines inside a continuation are dropped, like Docker does.
            while i < len(lines) and lines[i].strip().startswith("#"):
                i += 1
            if i >= len(lines):
                current = ""
                break
            current = lines[i].rstrip()
        parts.append(current)
        i += 1
        joined = " ".join(p.strip() for p in parts).strip()
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(start + 1, keyword.upper(), args.strip(), pending_ignore))
        pending_ignore = set()
    return instructions


def _is_json_array(args: str) -> bool:
    try:
        value = json.loads(args)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _substitute(text: str, variables: Dict[str, str]) -> str:
    def repl(m: "re.Match[str]") -> str:
        name = m.group(1) or m.group(2)
        return variables.get(name, m.group(0))
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, text)


def _shell_commands(script: str) -> List[List[str]]:
    """Splits a shell script into simple commands (lists of words), on ;, &&,
    || and |, honouring single and double quotes. Enough for apt-get checks."""
    commands: List[List[str]] = [[]]
    word = ""
    in_word = False
    quote: Optional[str] = None
    i = 0
    while i < len(script):
        c = script[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(script):
                i += 1
                word += script[i]
            else:
                word += c
        elif c in "'\"":
            quote = c
            in_word = True
        elif c == "\\" and i + 1 < len(script):
            i += 1
            word += script[i]
            in_word = True
        elif c.isspace() or c in ";&|()":
            if in_word:
                commands[-1].append(word)
                word, in_word = "", False
            if c in ";&|()" and commands[-1]:
                commands.append([])
        else:
            word += c
            in_word = True
        i += 1
    if in_word:
        commands[-1].append(word)
    return [c for c in commands if c]


def _has_pipe(script: str) -> bool:
    """True when the script pipes one command into another (| but not ||),
    outside quotes."""
    quote: Optional[str] = None
    i = 0
    while i < len(script):
        c = script[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "|":
            if i + 1 < len(script) and script[i + 1] == "|":
                i += 2
                continue
            if i > 0 and script[i - 1] == ">":  # ">|" clobber redirect
                i += 1
                continue
            return True
        i += 1
    return False


def _apt_installs(script: str) -> List[List[str]]:
    """Returns the argument lists of every `apt-get install` in the script."""
    installs = []
    for words in _shell_commands(script):
        # Skip leading VAR=value assignments and sudo-like wrappers.
        while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("sudo", "env")):
            words = words[1:]
        if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words[1:]:
            installs.append(words[words.index("install") + 1:])
    return installs


def _option_takes_value(opt: str) -> bool:
    return opt in ("-o", "-t", "-c", "--option", "--target-release", "--config-file")


def _packages(args: List[str]) -> List[str]:
    packages = []
    skip_next = False
    for a in args:
        if skip_next:
            skip_next = False
            continue
        if a.startswith("-"):
            skip_next = _option_takes_value(a)
            continue
        packages.append(a)
    return packages


def _is_root_user(user: str) -> bool:
    name = user.split(":")[0].strip()
    return name in ("root", "0")


def lint(text: str) -> List[Finding]:
    """Returns the findings for one Dockerfile's text, in line order."""
    findings: List[Finding] = []
    instructions = parse(text)

    def report(ins: Instruction, code: str, message: str) -> None:
        if code not in ins.ignored:
            findings.append(Finding(ins.line, code, message))

    global_args: Dict[str, str] = {}
    stage_names: Set[str] = set()
    pipefail = False
    seen_from = False
    last_user: Optional[Instruction] = None
    final_from: Optional[Instruction] = None
    for ins in instructions:
        kw = ins.keyword
        if kw == "ARG" and not seen_from:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif kw == "FROM":
            seen_from = True
            pipefail = False  # SHELL does not carry across stages
            last_user = None
            final_from = ins
            words = [w for w in ins.args.split() if not w.startswith("--platform")]
            image = _substitute(words[0], global_args) if words else ""
            if len(words) >= 3 and words[1].lower() == "as":
                stage_names.add(words[2].lower())
            if image.lower() in stage_names or image == "scratch" or "$" in image:
                continue
            if "@" in image:
                continue
            last_segment = image.rsplit("/", 1)[-1]
            if ":" not in last_segment:
                report(ins, "DL3006", f"Always tag the version of an image explicitly: {image}")
            elif last_segment.rsplit(":", 1)[1] == "latest":
                report(ins, "DL3007", f"Using latest is prone to errors: pin a version instead of {image}")
        elif kw == "SHELL":
            try:
                shell = json.loads(ins.args)
            except ValueError:
                shell = []
            flags = " ".join(shell[1:]) if isinstance(shell, list) else ""
            pipefail = bool(re.search(r"-o\s+pipefail", flags)) or (
                isinstance(shell, list) and shell and not re.search(r"(^|/)(ba|z|k|a|da)?sh$", shell[0]))
        elif kw == "USER":
            last_user = ins
        elif kw in ("CMD", "ENTRYPOINT"):
            if not _is_json_array(ins.args):
                report(ins, "DL3025", f"Use arguments JSON notation for {kw}: {kw} [\"executable\", \"arg\"]")
        elif kw == "RUN":
            script = ins.args
            if _is_json_array(script):
                script = " ".join(json.loads(script))
            flags = re.match(r"^((--\S+\s+)*)", script).group(1)
            script = script[len(flags):]
            if _has_pipe(script) and not pipefail:
                report(ins, "DL4006", "Set the SHELL option -o pipefail before RUN with a pipe in it")
            installs = _apt_installs(script)
            for args in installs:
                if "--no-install-recommends" not in args and not any(
                        "Install-Recommends=false" in a or "Install-Recommends=0" in a for a in args):
                    report(ins, "DL3015", "Avoid additional packages by specifying --no-install-recommends")
                unpinned = [p for p in _packages(args)
                            if "=" not in p and not p.endswith(".deb") and "/" not in p]
                if unpinned:
                    report(ins, "DL3008", "Pin versions in apt-get install: " + ", ".join(unpinned))
            if installs and not re.search(r"rm\s+(-[a-zA-Z]+\s+)*/var/lib/apt/lists/?\*?", script):
                report(ins, "DL3009", "Delete the apt-get lists after installing something: "
                                      "rm -rf /var/lib/apt/lists/* in the same RUN")

    if final_from is not None and last_user is not None and _is_root_user(last_user.args):
        report(last_user, "DL3002", "Last USER should not be root")
    if final_from is not None:
        if last_user is None:
            report(final_from, "INF001", "The final stage sets no USER: the image runs as root")
        elif not re.match(r"^\d+(:\d+)?$", last_user.args.strip()):
            report(last_user, "INF001",
                   f"USER {last_user.args} is not a numeric uid: Kubernetes runAsNonRoot cannot verify it")
    findings.sort(key=lambda f: f.line)
    return findings


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        findings = lint(text)
        for finding in findings:
            print(f"{path}:{finding.line} {finding.code} {finding.message}")
        if findings:
            status = 1
        else:
            print(f"{path}: clean")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
