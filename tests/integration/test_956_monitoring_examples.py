"""The monitoring examples the package ships (examples/monitoring/,
docs/monitoring.md): the alert rules pass `promtool check rules` and their
own `promtool test rules` unit tests; every PromQL expression of the Grafana
dashboard parses (promtool, on the expressions wrapped as recording rules);
and every fpm_replica_* metric the dashboard and the rules name is one the
status handler answers in a live scrape."""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

import harness
from releases import flip, make_release
from vhosts import pinned_vhost

EXAMPLES = os.path.join(harness.SOURCE_DIR, "examples", "monitoring")
DASHBOARD = os.path.join(EXAMPLES, "fpm-replica-dashboard.json")
ALERTS = os.path.join(EXAMPLES, "fpm-replica-alerts.yml")
ALERT_TESTS = os.path.join(EXAMPLES, "fpm-replica-alerts.test.yml")

# Grafana's variables in the dashboard's expressions, each given a concrete value.
GRAFANA_VARIABLES = {
    "vhost": "app.test:80",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
METRIC = re.compile(r"\bfpm_replica_[a-z0-9_]*[a-z0-9]")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool(*args, cwd=None):
    binary = shutil.which("promtool")
    assert binary, "promtool (Debian package prometheus) is needed"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def walk(node):
    """Every dict in a JSON document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def dashboard_expressions(doc):
    """(where, PromQL) of every query of the dashboard: panel targets,
    annotations, and the metric of each label_values() variable query."""
    found = []
    for panel in walk(doc.get("panels", [])):
        for target in panel.get("targets", []):
            found.append((f"panel {panel.get('id')} '{panel.get('title')}' {target.get('refId')}",
                          target["expr"]))
    for annotation in doc["annotations"]["list"]:
        if "expr" in annotation:
            found.append((f"annotation '{annotation['name']}'", annotation["expr"]))
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
            assert m, f"variable {variable['name']}: {variable['definition']}"
            found.append((f"variable {variable['name']}", m.group(1)))
    return found


def substitute(expr):
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        assert name in GRAFANA_VARIABLES, f"unknown Grafana variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]
    return VARIABLE.sub(value, expr)


def rules_file(path, expressions):
    """A rules file with each expression as a recording rule (JSON is YAML)."""
    rules = [{"record": f"dashboard:expr_{i}", "expr": expr} for i, (_, expr) in enumerate(expressions)]
    with open(path, "w") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
    return path


def alert_expressions():
    """The `expr` of every rule in the alerts file (read without a YAML
    library: a folded `>-` block or a one-line value)."""
    exprs, block = [], None
    with open(ALERTS) as f:
        for line in f:
            m = re.match(r"^(\s*)expr:\s*(.*)$", line)
            if m:
                if m.group(2) in (">-", ">", "|", "|-"):
                    block, indent = [], len(m.group(1))
                    exprs.append(block)
                else:
                    exprs.append([m.group(2)])
                continue
            if block is not None:
                if line.strip() and len(line) - len(line.lstrip()) <= indent:
                    block = None
                else:
                    block.append(line.strip())
    return [" ".join(e) for e in exprs]


def test_alert_rules_pass_promtool_check_and_unit_tests():
    check = promtool("check", "rules", ALERTS)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 10 rules found" in check.stdout, check.stdout
    tests = promtool("test", "rules", os.path.basename(ALERT_TESTS), cwd=EXAMPLES)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "SUCCESS" in tests.stdout, tests.stdout
    # Each alert is exercised by the unit tests.
    with open(ALERTS) as f:
        alerts = re.findall(r"^\s*- alert: (\w+)$", f.read(), re.M)
    with open(ALERT_TESTS) as f:
        tested = set(re.findall(r"^\s*alertname: (\w+)$", f.read(), re.M))
    assert len(alerts) == 10 and set(alerts) <= tested, set(alerts) - tested


def test_dashboard_is_importable_and_its_expressions_parse(tmp_path):
    doc = dashboard()
    assert 36 <= doc["schemaVersion"] <= 39
    assert doc["id"] is None and doc["uid"] and doc["title"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["vhost"]["definition"] == "label_values(fpm_replica_state, vhost)"
    # No data source uid of somebody's Grafana: every query goes to ${datasource}.
    for node in walk(doc):
        source = node.get("datasource")
        if isinstance(source, dict) and source.get("type") != "grafana":
            assert source == {"type": "prometheus", "uid": "${datasource}"}, node.get("title", node)
    ids = [p["id"] for p in walk(doc["panels"]) if "gridPos" in p]
    assert len(ids) == len(set(ids)), ids
    expressions = dashboard_expressions(doc)
    assert len(expressions) > 20
    for where, expr in expressions:
        assert re.search(r'vhost=~"\$vhost"', expr) or where.startswith("variable"), (where, expr)
    concrete = [(where, substitute(expr)) for where, expr in expressions]
    check = promtool("check", "rules", rules_file(tmp_path / "dashboard.rules.yml", concrete))
    names = "\n".join(f"dashboard:expr_{i}: {where}: {expr}" for i, (where, expr) in enumerate(concrete))
    assert check.returncode == 0, check.stdout + check.stderr + "\n" + names
    assert f"SUCCESS: {len(concrete)} rules found" in check.stdout, check.stdout
    # The same check fails a typo: it is not a formality.
    broken = promtool("check", "rules", rules_file(
        tmp_path / "broken.rules.yml", [("typo", "sum by (vhost) (rate(fpm_replica_requests_total[1m])")]))
    assert broken.returncode != 0, broken.stdout


def referenced_metrics():
    """fpm_replica_* names in the dashboard's expressions and the rules'."""
    exprs = [expr for _, expr in dashboard_expressions(dashboard())] + alert_expressions()
    assert len(alert_expressions()) == 10
    return {name for expr in exprs for name in METRIC.findall(expr)}


def scraped_families(text):
    """{family: type} of a Prometheus text scrape, from its TYPE lines and
    its samples (a sample without a TYPE line counts as untyped)."""
    families = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
        elif line and not line.startswith("#"):
            families.setdefault(re.match(r"[^{ ]+", line).group(0), "untyped")
    return families


def missing_from(families, names):
    missing = set()
    for name in names:
        if name in families:
            continue
        base = next((name[:-len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base and families.get(base) == "histogram":
            continue
        missing.add(name)
    return sorted(missing)


def test_referenced_metrics_exist_in_a_live_scrape(httpd):
    """Two replicas with their status sockets and FpmReplicaHealthCheck (so
    pool status is read), pinned to a release, after PHP requests (so the
    per-release and histogram series have samples, a 5xx among them)."""
    names = referenced_metrics()
    assert "fpm_replica_state" in names and "fpm_replica_pool_up" in names
    app = os.path.join(httpd.root, "app")
    public = os.path.join(make_release(app, "r1"), "public")
    with open(os.path.join(public, "fail.php"), "w") as f:
        f.write("<?php http_response_code(500); echo \"failed\\n\";\n")
    flip(app, "releases/r1")
    httpd.write_config(pinned_vhost(httpd, app, status=True)
                       .health_check("interval=200ms timeout=200ms fails=2 passes=1"))
    httpd.start_fpm("a")
    httpd.start_fpm("b")
    httpd.start()
    harness.wait_for(lambda: all(r["state"] == "ready" for r in httpd.status()["replicas"]), 10,
                     what="replicas ready")
    for _ in range(4):
        assert httpd.get("/version.php").status == 200
    assert httpd.get("/fail.php").status == 500

    def scrape():
        r = httpd.get("/fpm-replica-status?format=prometheus")
        assert r.status == 200
        return r.text
    harness.wait_for(lambda: scrape().count("fpm_replica_health_check_seconds{") == 2, 10,
                     what="a health check of each replica")
    # Pool status comes with the checks: give it a few more rounds.
    deadline = time.monotonic() + 3
    while True:
        families = scraped_families(scrape())
        missing = missing_from(families, names)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if missing:
        print("metrics the dashboard or the alerts name but the status handler does not answer:")
        for name in missing:
            print(f"  {name}")
    assert not missing, ("named by the dashboard or the alerts, absent from "
                         f"?format=prometheus: {', '.join(missing)}")
