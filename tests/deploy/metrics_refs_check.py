#!/usr/bin/env python3
"""Checks the PromQL in deploy/prometheus rules and the Grafana dashboard.

Default mode (needs only Python):
  - the dashboard is valid JSON with a title, a uid, unique panel ids, a
    gridPos and a datasource on every panel, and a non-empty expr per target;
  - every metric a rule or panel names is one the daemon exports, as
    docs/METRICS.md lists it (histograms with their _bucket/_sum/_count
    series), a recording rule defined in deploy/prometheus, or an external
    one of known_metrics.txt (Prometheus' `up`, kube-state-metrics);
  - every inferd_* name anywhere under deploy/ (manifests, adapter rules,
    KEDA queries) is a family of docs/METRICS.md;
  - a counter is only read through rate()/increase() and never raw, and
    histogram quantiles read _bucket series;
  - the dashboard shows every metric known_metrics.txt lists, and their
    types there agree with docs/METRICS.md.
--promql mode: also parses every dashboard expression with
`promtool check rules` (Grafana variables replaced by sample values); exits
77 (CTest skip) when promtool is not installed.

Usage: metrics_refs_check.py [--root REPO] [--promql]
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Set, Tuple

import yaml

SKIP = 77
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "inf", "nan", "atan2",
}
FUNCTION_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(")
IDENT = re.compile(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])")


def expand(known: Dict[str, str], name: str, kind: str) -> None:
    """Adds NAME (and a histogram's or summary's series) to `known`."""
    known[name] = kind
    if kind in ("histogram", "summary"):
        for suffix in ("_bucket", "_sum", "_count"):
            known[name + suffix] = "counter"


def load_known(path: str) -> Dict[str, str]:
    """NAME -> type of a known_metrics.txt-style list."""
    known: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, kind = line.split()
            known[name] = kind
    return known


def load_documented(path: str) -> Dict[str, str]:
    """NAME -> type of every family in docs/METRICS.md's table (first column,
    `a_{b,c}_d` expanded; second column the type)."""
    documented: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("| `"):
                continue
            cells = line.split("|")
            if len(cells) < 4:
                continue
            kind = cells[2].strip()
            for name in re.findall(r"`([a-z_{},]+)`", cells[1]):
                names = [""]
                for part in re.split(r"(\{[^}]*\})", name):
                    if part.startswith("{"):
                        names = [n + alt for n in names for alt in part[1:-1].split(",")]
                    else:
                        names = [n + part for n in names]
                for n in names:
                    documented[n] = kind
    return documented


def deploy_names(root: str) -> List[Tuple[str, str]]:
    """(file, name) of every inferd_* word in the files under deploy/."""
    found = []
    for dirpath, _, files in os.walk(os.path.join(root, "deploy")):
        for fname in sorted(files):
            path = os.path.join(dirpath, fname)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            for name in sorted(set(re.findall(r"(?<![\w:])inferd_[a-z0-9_]+", text))):
                found.append((os.path.relpath(path, root), name))
    return found


def grafana_to_promql(expr: str) -> str:
    """Replaces Grafana's variables with values that keep PromQL valid."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?(\w+)\}?", r".*", expr)


def metric_names(expr: str) -> Set[str]:
    """Metric names an expression selects (a light PromQL scan: strings, label
    matchers, grouping clauses, durations and function names removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = FUNCTION_CALL.sub(" (", e)
    names = set()
    for m in IDENT.finditer(e):
        word = m.group(1)
        if word.lower() in KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        names.add(word)
    return names


def counter_misuse(expr: str, known: Dict[str, str]) -> List[str]:
    """Counters (and histogram series) that appear outside rate()/increase()/irate()."""
    problems = []
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\[[^\]]*\])?", e):
        name, window = m.group(1), m.group(2)
        if known.get(name) == "counter" and not window:
            problems.append(f"counter {name} is read without rate()/increase() over a range")
    return problems


def rule_exprs(paths: List[str]) -> Tuple[List[Tuple[str, str]], Set[str]]:
    """(where, expr) of every rule, and the set of recorded names."""
    exprs, recorded = [], set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                name = rule.get("record") or rule.get("alert")
                if "record" in rule:
                    recorded.add(rule["record"])
                exprs.append((f"{os.path.basename(path)}: {name}", str(rule.get("expr", ""))))
    return exprs, recorded


def dashboard_exprs(dashboard: dict, errors: List[str]) -> List[Tuple[str, str]]:
    for key in ("title", "uid", "panels"):
        if not dashboard.get(key):
            errors.append(f"dashboard: missing {key}")
    exprs, ids = [], set()
    panels = list(dashboard.get("panels") or [])
    for p in panels:
        panels.extend(p.get("panels") or [])  # panels inside collapsed rows
    for p in panels:
        pid = p.get("id")
        where = f"dashboard panel {pid} {p.get('title')!r}"
        if pid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(pid)
        grid = p.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            errors.append(f"{where}: gridPos needs integer h, w, x, y")
        elif grid["x"] + grid["w"] > 24:
            errors.append(f"{where}: wider than the 24-column grid")
        if p.get("type") == "row":
            continue
        if not p.get("datasource"):
            errors.append(f"{where}: no datasource")
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids):
            errors.append(f"{where}: duplicate refId")
        for t in targets:
            if not str(t.get("expr", "")).strip():
                errors.append(f"{where}: target {t.get('refId')} has no expr")
            else:
                exprs.append((where, t["expr"]))
    return exprs


def promtool_parse(exprs: List[Tuple[str, str]], promtool: str) -> List[str]:
    """Parses each expression with promtool by wrapping it in a recording rule."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(rules, f)
        path = f.name
    try:
        run = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    if run.returncode == 0:
        return []
    problems = [line.strip() for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    for i, (where, e) in enumerate(exprs):
        if any(f"expr_{i}\"" in line or f"expr_{i}:" in line for line in problems):
            problems.append(f"{where}: {e}")
    return problems


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    parser.add_argument("--promql", action="store_true")
    args = parser.parse_args(argv[1:])
    root = os.path.normpath(args.root)
    listed = load_known(os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_metrics.txt"))
    documented = load_documented(os.path.join(root, "docs", "METRICS.md"))
    known: Dict[str, str] = {}
    for name, kind in documented.items():
        expand(known, name, kind)
    for name, kind in listed.items():
        if kind == "external":
            known[name] = kind
    rule_files = sorted(glob.glob(os.path.join(root, "deploy", "prometheus", "*.yaml")))
    errors: List[str] = []
    with open(os.path.join(root, "deploy", "grafana", "inferd-dashboard.json"), encoding="utf-8") as f:
        try:
            dashboard = json.load(f)
        except ValueError as e:
            print(f"dashboard: not JSON: {e}")
            return 1
    panel_exprs = dashboard_exprs(dashboard, errors)

    if args.promql:
        promtool = shutil.which("promtool")
        if promtool is None:
            print("SKIP: promtool is not installed (Debian package prometheus)")
            return SKIP
        errors += promtool_parse(panel_exprs, promtool)
    else:
        if not documented:
            errors.append("docs/METRICS.md: no metric table found")
        for name, kind in listed.items():
            if kind != "external" and documented.get(name) != kind:
                errors.append(f"known_metrics.txt: {name} {kind} is not in docs/METRICS.md as a {kind}")
        for where, name in deploy_names(root):
            if name not in known:
                errors.append(f"{where}: {name} is not a series of docs/METRICS.md")
        exprs, recorded = rule_exprs(rule_files)
        used: Set[str] = set()
        for where, expr in exprs + [(w, grafana_to_promql(e)) for w, e in panel_exprs]:
            for name in metric_names(expr):
                if name not in known and name not in recorded:
                    errors.append(f"{where}: unknown metric {name}")
            errors += [f"{where}: {p}" for p in counter_misuse(expr, known)]
            if "histogram_quantile" in expr and "_bucket" not in expr:
                errors.append(f"{where}: histogram_quantile over something other than _bucket series")
        for _, expr in panel_exprs:
            used |= metric_names(grafana_to_promql(expr))
        used_bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
        for name, kind in listed.items():
            if kind != "external" and name not in used_bases:
                errors.append(f"dashboard: no panel shows {name}")
    for e in errors:
        print(e)
    print(f"{len(panel_exprs)} dashboard queries, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
