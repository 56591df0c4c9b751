// Validates an AsyncAPI document with the AsyncAPI Initiative's own parser (the same parser and
// rule set as `asyncapi validate`): the schema of the specification, the references (files
// beside the document included) and the recommended rules; then compiles every `pattern` of
// the resolved document, and of every JSON Schema in the schemas/ folder beside it (those no
// message refers to included), as the ECMA-262 regular expression JSON Schema says it is
// (JavaScript validators would fail on, say, Python's inline flags). Prints every diagnostic; exits 1 on an
// error or a warning, 0 otherwise.
// Usage: node validate.mjs <asyncapi.yaml>
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];
const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node validate.mjs <asyncapi.yaml>");
  process.exit(2);
}
const { document, diagnostics } = await fromFile(new Parser(), file).parse();
let failing = 0;
for (const diagnostic of diagnostics) {
  const severity = SEVERITY[diagnostic.severity] ?? String(diagnostic.severity);
  if (diagnostic.severity <= 1) failing += 1;
  const where = diagnostic.path.length ? diagnostic.path.join(".") : "(document)";
  console.log(`${severity} ${diagnostic.code} at ${where}: ${diagnostic.message}`);
}
// Every "pattern" keyword of a schema in the resolved document (headers, payloads, bindings).
function* patterns(node, path) {
  if (Array.isArray(node)) {
    for (const [index, item] of node.entries()) yield* patterns(item, `${path}[${index}]`);
  } else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "pattern" && typeof value === "string") yield [path, value];
      else if (key !== "properties" || typeof value !== "object") yield* patterns(value, `${path}.${key}`);
      else for (const [name, schema] of Object.entries(value)) yield* patterns(schema, `${path}.properties.${name}`);
    }
  }
}
if (document !== undefined) {
  let compiled = 0;
  const folder = join(dirname(file), "schemas");
  const sources = [["$", document.json()]];
  for (const name of readdirSync(folder).filter((n) => n.endsWith(".json")).sort()) {
    sources.push([`schemas/${name}`, JSON.parse(readFileSync(join(folder, name), "utf8"))]);
  }
  for (const [path, pattern] of sources.flatMap(([where, tree]) => [...patterns(tree, where)])) {
    try {
      new RegExp(pattern, "u");
      compiled += 1;
    } catch (error) {
      failing += 1;
      console.log(`error pattern at ${path}: not an ECMA-262 regular expression: ${error.message}`);
    }
  }
  console.log(`${compiled} patterns compile as ECMA-262 regular expressions`);
}
if (document === undefined || failing > 0) {
  console.error(`${file}: not valid (${failing} error(s) or warning(s))`);
  process.exit(1);
}
const channels = document.channels().length;
const messages = document.components().messages().length;
console.log(`${file}: valid AsyncAPI ${document.version()} (${channels} channels, ${messages} messages)`);
