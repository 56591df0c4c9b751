"""``make deploy-check``: render the Kubernetes manifests and validate everything deployable.

* renders ``deploy/kubernetes/base`` and every overlay with the renderer in ``kustomize.py``;
* validates each Kubernetes object against the Kubernetes schemas of ``KUBERNETES_VERSION``
  (kubernetes-validate, strict: unknown fields fail);
* validates Strimzi, CloudNativePG and Prometheus Operator objects against the schemas generated
  from their CRDs (npm @kubernetes-models/*, ``crds.mjs``), unknown fields included, and the
  Barman Cloud plugin's ObjectStore against ``schemas/objectstore.json`` (written here: no
  published schema could be had) plus CloudNativePG's schema of its ``spec.configuration``;
* checks what the hub needs of them: probes, securityContext, service accounts, PDBs, grace
  period, secrets at HUB_SECRETS_DIR and only the keys each service needs; topics and retention
  as ``hub/runtime/topics.py`` creates them; the services' KafkaUsers exactly as ``hub acls`` prints them;
  the database roles; alerts with ``for``, severity and a runbook section in deploy/README.md;
* checks that the rules and the Grafana dashboard use only the metrics in deploy/metrics.json;
* lints deploy/Dockerfile with hadolint.

Every problem is printed; the exit status is 1 if there was any.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from deploy.check.kustomize import KustomizeError, build

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.34.0"
KUSTOMIZATIONS = {
    "base": ROOT / "deploy/kubernetes/base",
    "production": ROOT / "deploy/kubernetes/overlays/production",
}
METRICS_FILE = ROOT / "deploy/metrics.json"
README = ROOT / "deploy/README.md"
DOCKERFILE = ROOT / "deploy/Dockerfile"
OBJECT_STORE_SCHEMA = Path(__file__).parent / "schemas/objectstore.json"
CRD_GROUPS = ("kafka.strimzi.io/", "postgresql.cnpg.io/", "monitoring.coreos.com/", "barmancloud.cnpg.io/")

SERVICES = ("identity", "registry", "notifications")
# Which key files each service reads (README, "Configuration"); it mounts these and no others.
KEYS = {
    "identity": {"HUB_MASTER_KEY_FILE", "HUB_PSEUDONYM_KEY_FILE"},
    "registry": {"HUB_MASTER_KEY_FILE", "HUB_AUDIT_KEY_FILE", "HUB_SIGNING_KEY_FILE"},
    "notifications": {"HUB_MASTER_KEY_FILE"},
}
ALL_KEYS = {"HUB_MASTER_KEY_FILE", "HUB_PSEUDONYM_KEY_FILE", "HUB_AUDIT_KEY_FILE", "HUB_SIGNING_KEY_FILE"}
OPERATOR_KEYS = {"identity", "registry"}  # HUB_OPERATOR_PUBLIC_KEYS: the services applying hub.admin
SEVERITIES = {"critical", "warning"}
DATABASE_ROLES = {"hub_identity", "hub_registry", "hub_notifications"}

Obj = dict[str, Any]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def ident(target: str, o: Obj) -> str:
    return f"[{target}] {o.get('kind')} {o.get('metadata', {}).get('name')}"


# ------------------------------------------------------------------------------------ schemas
def validate_kubernetes(target: str, objects: list[Obj], report: Report) -> list[Obj]:
    """Core objects against the Kubernetes schemas; returns the custom resources left over."""
    custom = []
    for o in objects:
        if o["apiVersion"].startswith(CRD_GROUPS):
            custom.append(o)
            continue
        try:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
            report.counts[f"Kubernetes {KUBERNETES_VERSION} (kubernetes-validate, strict)"] += 1
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            report.fail(ident(target, o), f"/{path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            report.fail(ident(target, o), f"no Kubernetes {KUBERNETES_VERSION} schema for {o['apiVersion']}")
    return custom


def validate_custom(batches: list[tuple[str, Obj]], node_modules: Path, report: Report) -> None:
    payload = {"objects": [{"id": str(i), "object": o} for i, (_, o) in enumerate(batches)]}
    try:
        done = subprocess.run(
            ["node", str(Path(__file__).parent / "crds.mjs"), str(node_modules)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", "") or ""
        report.fail("CRD schemas", f"node crds.mjs failed: {error} {stderr.strip()}")
        return
    store_schema = json.loads(OBJECT_STORE_SCHEMA.read_text())
    for result in json.loads(done.stdout)["results"]:
        target, o = batches[int(result["id"])]
        for message in result["errors"]:
            report.fail(ident(target, o), message)
        if result["schema"]:
            report.counts[f"{result['schema'].split()[0]} ({o['kind']})"] += 1
        if o["kind"] == "ObjectStore":
            for error in jsonschema.Draft202012Validator(store_schema).iter_errors(o):
                report.fail(ident(target, o), f"/{'/'.join(map(str, error.path))}: {error.message}")
            report.counts["deploy/check/schemas/objectstore.json (ObjectStore, written here)"] += 1


# ---------------------------------------------------------------------------------- the hub's
def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Obj], kind: str, name: str) -> Obj | None:
    return next((o for o in by_kind(objects, kind) if o["metadata"]["name"] == name), None)


def check_pod_security(target: str, o: Obj, report: Report) -> None:
    pod = o["spec"]["template"]["spec"]
    where = ident(target, o)
    security = pod.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        report.fail(where, "pod securityContext.runAsNonRoot must be true")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        report.fail(where, "pod securityContext.seccompProfile.type must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        report.fail(where, "automountServiceAccountToken must be false")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            report.fail(where, f"container {c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            report.fail(where, f"container {c['name']}: readOnlyRootFilesystem must be true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            report.fail(where, f"container {c['name']}: capabilities must drop ALL")
        resources = c.get("resources") or {}
        if not {"cpu", "memory"} <= set(resources.get("requests") or {}) or "memory" not in (
            resources.get("limits") or {}
        ):
            report.fail(where, f"container {c['name']}: needs cpu and memory requests and a memory limit")
        image = str(c.get("image", ""))
        untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        if untagged or image.endswith(":latest"):
            report.fail(where, f"container {c['name']}: image {image!r} must carry a fixed tag")


def check_hub_workloads(target: str, objects: list[Obj], report: Report) -> None:
    settings = (named(objects, "ConfigMap", "hub-settings") or {}).get("data") or {}
    if not settings:
        report.fail(f"[{target}]", "ConfigMap hub-settings is missing")
    secrets_dir = settings.get("HUB_SECRETS_DIR", "")
    grace = float(settings.get("HUB_SHUTDOWN_GRACE_S", "15"))
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        check_pod_security(target, workload, report)
        pod = workload["spec"]["template"]["spec"]
        account = named(objects, "ServiceAccount", pod.get("serviceAccountName", ""))
        if account is None or account.get("automountServiceAccountToken") is not False:
            report.fail(
                ident(target, workload),
                "needs its own ServiceAccount with automountServiceAccountToken false",
            )
    for service in SERVICES:
        deployment = named(objects, "Deployment", f"hub-{service}")
        if deployment is None:
            report.fail(f"[{target}]", f"Deployment hub-{service} is missing")
            continue
        where = ident(target, deployment)
        pod = deployment["spec"]["template"]["spec"]
        (hub,) = [c for c in pod["containers"] if c["name"] == "hub"] or [{}]
        if hub.get("args") != ["service", "run", service]:
            report.fail(where, f"container hub must run `hub service run {service}`")
        ports = {p.get("name"): p.get("containerPort") for p in hub.get("ports", [])}
        if ports.get("health") != 8080 or settings.get("HUB_HEALTH_PORT") != "8080":
            report.fail(where, "the health port must be 8080, named health, and HUB_HEALTH_PORT=8080")
        if settings.get("HUB_HEALTH_HOST") != "0.0.0.0":
            report.fail(where, "HUB_HEALTH_HOST must be 0.0.0.0 in a pod (probes come from the kubelet)")
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            get = (hub.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path or get.get("port") not in ("health", 8080):
                report.fail(where, f"{probe} must GET {path} on port 8080")
        if not pod.get("terminationGracePeriodSeconds", 30) > grace + 2:
            report.fail(
                where, f"terminationGracePeriodSeconds must exceed HUB_SHUTDOWN_GRACE_S ({grace}) + 2"
            )
        mounts = {m["mountPath"]: m for m in hub.get("volumeMounts", [])}
        if secrets_dir not in mounts:
            report.fail(where, f"no volume mounted at HUB_SECRETS_DIR ({secrets_dir or 'unset'})")
        env = {e["name"]: e for e in hub.get("env", [])}
        if env.get("OTEL_SERVICE_NAME", {}).get("value") != f"hub-{service}":
            report.fail(where, f"OTEL_SERVICE_NAME must be hub-{service}")
        if env.get("HUB_KAFKA_SASL_USERNAME", {}).get("value") != f"hub-{service}":
            report.fail(where, f"HUB_KAFKA_SASL_USERNAME must be hub-{service}")
        if f"hub_{service}@" not in env.get("HUB_DATABASE_URL", {}).get("value", ""):
            report.fail(where, f"HUB_DATABASE_URL must log in as hub_{service}")
        keys = {name for name in env if name in ALL_KEYS}
        if keys != KEYS[service]:
            report.fail(
                where, f"key files {sorted(keys)}, but the service needs exactly {sorted(KEYS[service])}"
            )
        wanted = {name for name in env if name in ALL_KEYS} | (
            {"HUB_OPERATOR_PUBLIC_KEYS"} if service in OPERATOR_KEYS else set()
        )
        for name in wanted:
            path = env[name]["value"] if name in env else settings.get(name, "")
            if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
                report.fail(where, f"{name}={path} is not on a mounted volume")
        if "operator-keys" in {v["name"] for v in pod.get("volumes", [])} and service not in OPERATOR_KEYS:
            report.fail(where, "mounts the operators' public keys it does not need")
        labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        budgets = [
            b
            for b in by_kind(objects, "PodDisruptionBudget")
            if (b["spec"].get("selector") or {}).get("matchLabels", {}).items() <= labels.items()
        ]
        if not budgets:
            report.fail(where, "no PodDisruptionBudget selects its pods")
    job = named(objects, "Job", "hub-migrate")
    if job is None or job["spec"]["template"]["spec"]["containers"][0].get("args") != ["db", "migrate"]:
        report.fail(f"[{target}]", "Job hub-migrate running `hub db migrate` is missing")
    elif "hub_owner@" not in json.dumps(job["spec"]["template"]["spec"]["containers"][0].get("env", [])):
        report.fail(ident(target, job), "must connect as hub_owner")


def check_kafka(target: str, objects: list[Obj], report: Report) -> None:
    sys.path.insert(0, str(ROOT))
    from hub.runtime import topics
    from hub.security.acls import service_acls, strimzi_users

    (kafka,) = by_kind(objects, "Kafka") or [None]
    if kafka is None:
        report.fail(f"[{target}]", "no Kafka")
        return
    cluster = kafka["metadata"]["name"]
    config = kafka["spec"]["kafka"].get("config") or {}
    for key, value in {
        "min.insync.replicas": 2,
        "default.replication.factor": 3,
        "auto.create.topics.enable": False,
    }.items():
        if config.get(key) != value:
            report.fail(ident(target, kafka), f"config {key} must be {value!r}")
    brokers = sum(
        p["spec"]["replicas"] for p in by_kind(objects, "KafkaNodePool") if "broker" in p["spec"]["roles"]
    )
    if brokers < 3:
        report.fail(ident(target, kafka), f"{brokers} brokers; replication factor 3 needs at least 3")
    for o in objects:
        strimzi = o["apiVersion"].startswith("kafka.strimzi.io/") and o["kind"] != "Kafka"
        if strimzi and (o["metadata"].get("labels") or {}).get("strimzi.io/cluster") != cluster:
            report.fail(ident(target, o), f"label strimzi.io/cluster must name the Kafka {cluster!r}")
    # The fixed topics, as the services would create them (hub/runtime/topics.py).
    consumed = [topics.ADMIN, topics.IDENTITY_PARTNERS, topics.IDENTITY_REQUESTS, topics.IDENTITY_RESULTS]
    consumed += [topics.NOTIFICATION_REQUESTS, topics.NOTIFICATION_STATUS]
    expected = {*consumed, *(f"{t}-dlt" for t in consumed), topics.OPS, f"{topics.INGRESS}-dlt"}
    declared = {o["spec"].get("topicName", o["metadata"]["name"]): o for o in by_kind(objects, "KafkaTopic")}
    if set(declared) != expected:
        report.fail(
            f"[{target}] KafkaTopics",
            f"missing {sorted(expected - set(declared))}, unexpected {sorted(set(declared) - expected)}",
        )
    retention = float(
        (named(objects, "ConfigMap", "hub-settings") or {})
        .get("data", {})
        .get("HUB_KAFKA_RETENTION_HOURS", 168)
    )
    for name, o in declared.items():
        config = {k: str(v) for k, v in (o["spec"].get("config") or {}).items()}
        for key, value in topics.topic_config(name, retention_hours=retention).items():
            if config.get(key) != value:
                report.fail(
                    ident(target, o),
                    f"{key} must be {value} (hub/runtime/topics.py, HUB_KAFKA_RETENTION_HOURS)",
                )
        if not topics.carries_personal_data(name) and "retention.ms" in config:
            report.fail(ident(target, o), "names agencies only: keeps the cluster's default retention")
        if o["spec"].get("replicas") != 3 or str(config.get("min.insync.replicas")) != "2":
            report.fail(ident(target, o), "replicas must be 3 and min.insync.replicas 2")
        if "compact" in config.get("cleanup.policy", ""):
            report.fail(ident(target, o), "must not be compacted (erasure relies on retention)")
    # The services' users: exactly what `hub acls --format strimzi --cluster <cluster>` prints.
    for service in SERVICES:
        user = named(objects, "KafkaUser", f"hub-{service}")
        printed = json.loads(strimzi_users(service_acls(service), cluster=cluster).split("---\n")[1])
        if user is None:
            report.fail(f"[{target}]", f"KafkaUser hub-{service} is missing")
        elif user["spec"] != printed["spec"]:
            report.fail(
                ident(target, user), "differs from `hub acls --format strimzi` (hub/security/acls.py)"
            )


def check_postgres(target: str, objects: list[Obj], report: Report) -> None:
    (cluster,) = by_kind(objects, "Cluster") or [None]
    if cluster is None:
        report.fail(f"[{target}]", "no CloudNativePG Cluster")
        return
    spec = cluster["spec"]
    where = ident(target, cluster)
    if spec.get("instances", 0) < 3:
        report.fail(where, "needs 3 instances")
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    if initdb.get("database") != "hub" or initdb.get("owner") != "hub_owner":
        report.fail(where, "database hub must be owned by hub_owner")
    roles = {r["name"]: r for r in (spec.get("managed") or {}).get("roles", [])}
    if set(roles) != DATABASE_ROLES:
        report.fail(where, f"managed roles {sorted(roles)}, expected {sorted(DATABASE_ROLES)}")
    for name, role in roles.items():
        if (
            not (role.get("passwordSecret") or {}).get("name")
            or role.get("superuser")
            or role.get("createdb")
        ):
            report.fail(where, f"role {name}: login with a password Secret, no superuser, no createdb")
    archivers = [p for p in spec.get("plugins") or [] if p.get("isWALArchiver")]
    stores = {o["metadata"]["name"] for o in by_kind(objects, "ObjectStore")}
    if not archivers or archivers[0].get("parameters", {}).get("barmanObjectName") not in stores:
        report.fail(where, "WAL archiving must go to a declared ObjectStore")
    backups = by_kind(objects, "ScheduledBackup")
    if not backups or any(b["spec"]["cluster"]["name"] != cluster["metadata"]["name"] for b in backups):
        report.fail(where, "needs a ScheduledBackup of this cluster")


# ------------------------------------------------------------------------ alerts and metrics
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
PROMQL_WORDS |= {"offset", "inf", "nan", "le"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+\}?", "0", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()
        if word in PROMQL_WORDS or following.startswith("("):
            continue
        names.add(word)
    return names


def known_metrics() -> set[str]:
    names = set()
    for metric in json.loads(METRICS_FILE.read_text())["metrics"]:
        names.add(metric["name"])
        if metric["type"] == "histogram":
            names |= {f"{metric['name']}_{s}" for s in ("bucket", "sum", "count")}
    return names


def markdown_anchors(text: str) -> set[str]:
    anchors = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def check_rules(target: str, objects: list[Obj], report: Report) -> None:
    metrics, anchors = known_metrics(), markdown_anchors(README.read_text())
    for rule_set in by_kind(objects, "PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                where = f"{ident(target, rule_set)} {rule.get('alert') or rule.get('record')}"
                for name in sorted(promql_metrics(str(rule["expr"])) - metrics):
                    report.fail(where, f"metric {name} is not in deploy/metrics.json")
                if "alert" not in rule:
                    continue
                if not rule.get("for"):
                    report.fail(where, "an alert needs for:")
                if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                    report.fail(where, f"severity label must be one of {sorted(SEVERITIES)}")
                annotations = rule.get("annotations") or {}
                runbook = str(annotations.get("runbook_url", ""))
                if not annotations.get("summary") or not runbook.startswith("deploy/README.md#"):
                    report.fail(where, "needs a summary and a runbook_url deploy/README.md#<section>")
                elif runbook.split("#", 1)[1] not in anchors:
                    report.fail(
                        where, f"runbook section #{runbook.split('#', 1)[1]} is not in deploy/README.md"
                    )
                report.counts["alert rules checked"] += 1


def dashboard_queries(dashboard: Obj) -> Iterator[tuple[str, str]]:
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for t in inner.get("targets", []):
                yield f"panel {inner.get('title')!r}", str(t.get("expr", ""))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        if variable.get("type") == "query":
            values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            yield f"variable {variable.get('name')!r}", values.group(1) if values else query


def check_dashboard(target: str, objects: list[Obj], report: Report) -> None:
    maps = [
        o
        for o in by_kind(objects, "ConfigMap")
        if (o["metadata"].get("labels") or {}).get("grafana_dashboard")
    ]
    if not maps:
        report.fail(f"[{target}]", "no ConfigMap labelled grafana_dashboard")
    metrics = known_metrics()
    for cm in maps:
        for key, text in (cm.get("data") or {}).items():
            where = f"{ident(target, cm)} {key}"
            try:
                dashboard = json.loads(text)
            except json.JSONDecodeError as error:
                report.fail(where, f"not JSON: {error}")
                continue
            if not dashboard.get("uid") or not dashboard.get("title") or not dashboard.get("panels"):
                report.fail(where, "a dashboard needs uid, title and panels")
            ids = [p.get("id") for p in dashboard.get("panels", [])]
            if len(ids) != len(set(ids)) or None in ids:
                report.fail(where, "panel ids must be present and unique")
            for place, expr in dashboard_queries(dashboard):
                if not expr.strip():
                    report.fail(where, f"{place}: empty query")
                for name in sorted(promql_metrics(expr) - metrics):
                    report.fail(where, f"{place}: metric {name} is not in deploy/metrics.json")
                report.counts["dashboard queries checked"] += 1


def hadolint(venv_bin: Path, report: Report) -> None:
    done = subprocess.run(
        [str(venv_bin / "hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in (done.stdout + done.stderr).splitlines():
        report.fail("hadolint", line)
    if done.returncode != 0 and not (done.stdout + done.stderr).strip():
        report.fail("hadolint", f"exit status {done.returncode}")
    report.counts["Dockerfile (hadolint)"] += 1


def secrets_to_provide(objects: list[Obj]) -> set[str]:
    found = set()
    for o in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        for volume in o["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                found.add(volume["secret"]["secretName"])
            for source in (volume.get("projected") or {}).get("sources", []):
                if "secret" in source:
                    found.add(source["secret"]["name"])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--node-modules", type=Path, required=True, help="where npm ci installed package.json"
    )
    parser.add_argument("--print", choices=sorted(KUSTOMIZATIONS), help="only print the rendered manifests")
    args = parser.parse_args(argv)
    if args.print:
        print(yaml.safe_dump_all(build(KUSTOMIZATIONS[args.print]), sort_keys=False), end="")
        return 0
    started = time.monotonic()
    report = Report()
    custom: list[tuple[str, Obj]] = []
    rendered: dict[str, list[Obj]] = {}
    for target, directory in KUSTOMIZATIONS.items():
        try:
            rendered[target] = build(directory)
        except (KustomizeError, yaml.YAMLError, OSError) as error:
            report.fail(f"[{target}] render", str(error))
            continue
        objects = rendered[target]
        custom += [(target, o) for o in validate_kubernetes(target, objects, report)]
        for check in (check_hub_workloads, check_kafka, check_postgres, check_rules, check_dashboard):
            try:
                check(target, objects, report)
            except (KeyError, TypeError, ValueError, IndexError) as error:
                report.fail(f"[{target}] {check.__name__}", f"malformed: {error!r}")
    # What `hub acls --format strimzi --partners-only` prints must be valid too.
    sys.path.insert(0, str(ROOT))
    from hub.security.acls import partner_acls, strimzi_users

    sample = strimzi_users(partner_acls("CH/MUN/1061/einwohnerdienste"), cluster="hub")
    custom.append(("hub acls", json.loads(sample.split("---\n")[1])))
    validate_custom(custom, args.node_modules, report)
    hadolint(Path(sys.executable).parent, report)
    for target, objects in rendered.items():
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(o["kind"] for o in objects).items()))
        print(f"rendered {target}: {len(objects)} objects ({kinds})")
    print("validated:")
    for what, n in sorted(report.counts.items()):
        print(f"  {n:3d}  {what}")
    if "production" in rendered:
        secrets = ", ".join(sorted(secrets_to_provide(rendered["production"])))
        print(f"Secrets the production namespace must hold: {secrets}")
    elapsed = time.monotonic() - started
    if report.problems:
        print(f"\n{len(report.problems)} problems:", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        print(f"deploy-check FAILED in {elapsed:.1f} s", file=sys.stderr)
        return 1
    print(f"deploy-check passed in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
