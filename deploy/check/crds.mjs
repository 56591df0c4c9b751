// Validates custom resources against the JSON schemas generated from their operators' CRDs
// (npm packages @kubernetes-models/*, pinned in package-lock.json), and finds fields those
// schemas do not know. The generated validators check types, enums and required fields but,
// like the CRDs, leave objects open; the API server would prune or refuse an unknown field, so
// each field is probed: replaced by values of the wrong type, a field the schema knows yields
// an error at its path, an unknown one yields none. Maps the schemas leave free-form (Kafka
// configs) are named in OPEN_MAPS and not probed.
//
// Input (stdin): {"objects": [{"id": "...", "object": {...}}]}.
// Output (stdout): {"results": [{"id": "...", "errors": ["<path>: <message>"], "schema": "..."}]}.
// Usage: node crds.mjs NODE_MODULES_DIR < objects.json

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const SCHEMAS = {
  "kafka.strimzi.io/v1": {
    package: "@kubernetes-models/strimzi-kafka-operator",
    file: (kind) => `KafkaStrimziIoV1${kind}`,
    kinds: ["Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"],
  },
  "postgresql.cnpg.io/v1": {
    package: "@kubernetes-models/cloudnative-pg",
    file: (kind) => `ComGithubCloudnativePgCloudnativePgApiV1${kind}`,
    kinds: ["Cluster", "ScheduledBackup", "Backup", "Database", "Pooler"],
  },
  "monitoring.coreos.com/v1": {
    package: "@kubernetes-models/prometheus-operator",
    file: (kind) => `ComGithubPrometheusOperatorPrometheusOperatorPkgApisMonitoringV1${kind}`,
    kinds: ["PodMonitor", "PrometheusRule", "ServiceMonitor"],
  },
};

// The Barman Cloud plugin's ObjectStore has no published schema package; its spec.configuration
// is CloudNativePG's BarmanObjectStoreConfiguration, validated here with that type's schema.
// The rest of the object is checked by the Python side against deploy/check/schemas.
const OBJECT_STORE_CONFIGURATION = {
  package: "@kubernetes-models/cloudnative-pg",
  file: "ComGithubCloudnativePgBarmanCloudPkgApiBarmanObjectStoreConfiguration",
};

const OPEN_MAPS = {
  Kafka: [/^\/spec\/kafka\/config$/],
  KafkaTopic: [/^\/spec\/config$/],
  KafkaNodePool: [],
};

const PROBES = [1.5, "\u0000probe", [[1.5]]];

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node crds.mjs NODE_MODULES_DIR < objects.json");
  process.exit(2);
}

async function validatorFor(pkg, file) {
  const url = pathToFileURL(join(modules, pkg, "_schemas", `${file}.js`)).href;
  const module = await import(url);
  return module.validate;
}

function pointer(path) {
  return path.map((p) => "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

function errorsOf(validate, data) {
  if (validate(data)) return [];
  return (validate.errors || []).map((e) => ({
    path: e.instancePath,
    text: `${e.instancePath || "/"}: ${e.message || e.keyword}${e.params && Object.keys(e.params).length ? " " + JSON.stringify(e.params) : ""}`,
  }));
}

function setAt(root, path, value) {
  let node = root;
  for (const part of path.slice(0, -1)) node = node[part];
  node[path[path.length - 1]] = value;
}

function known(validate, root, path) {
  const at = pointer(path);
  for (const probe of PROBES) {
    const copy = structuredClone(root);
    setAt(copy, path, probe);
    if (errorsOf(validate, copy).some((e) => e.path === at || e.path.startsWith(at + "/"))) return true;
  }
  return false;
}

function unknownFields(validate, root, kind, node = root, path = []) {
  const found = [];
  const open = (OPEN_MAPS[kind] || []).some((re) => re.test(pointer(path)));
  if (Array.isArray(node)) {
    node.forEach((item, i) => found.push(...unknownFields(validate, root, kind, item, [...path, i])));
  } else if (node !== null && typeof node === "object" && !open) {
    for (const key of Object.keys(node)) {
      const child = [...path, key];
      if (!known(validate, root, child)) {
        found.push(`${pointer(child)}: field not in the schema`);
      } else if (typeof node[key] === "object" && node[key] !== null) {
        found.push(...unknownFields(validate, root, kind, node[key], child));
      }
    }
  }
  return found;
}

function check(validate, object, kind) {
  const errors = errorsOf(validate, object).map((e) => e.text);
  // Probing needs a valid object: an error elsewhere would hide the probe's own.
  return errors.length ? errors : unknownFields(validate, object, kind);
}

const input = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { id, object } of input.objects) {
  const { apiVersion, kind } = object;
  if (apiVersion === "barmancloud.cnpg.io/v1" && kind === "ObjectStore") {
    const validate = await validatorFor(OBJECT_STORE_CONFIGURATION.package, OBJECT_STORE_CONFIGURATION.file);
    const configuration = object?.spec?.configuration;
    const errors = configuration === undefined
      ? ["/spec/configuration: required"]
      : check(validate, configuration, "BarmanObjectStoreConfiguration").map((e) => "/spec/configuration" + (e.startsWith("/:") ? e.slice(1) : e));
    results.push({ id, errors, schema: `${OBJECT_STORE_CONFIGURATION.package} ${OBJECT_STORE_CONFIGURATION.file} (spec.configuration)` });
    continue;
  }
  const source = SCHEMAS[apiVersion];
  if (!source || !source.kinds.includes(kind)) {
    results.push({ id, errors: [`no schema for ${apiVersion} ${kind}`], schema: null });
    continue;
  }
  const validate = await validatorFor(source.package, source.file(kind));
  results.push({ id, errors: check(validate, object, kind), schema: `${source.package} ${source.file(kind)}` });
}
process.stdout.write(JSON.stringify({ results }));
