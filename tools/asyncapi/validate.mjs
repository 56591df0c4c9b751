// Validates an AsyncAPI document with the AsyncAPI Initiative's own parser (the same parser and
// rule set as `asyncapi validate`): the schema of the specification, the references (files
// beside the document included) and the recommended rules. Prints every diagnostic; exits 1 on
// an error or a warning, 0 otherwise.
// Usage: node validate.mjs <asyncapi.yaml>
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
if (document === undefined || failing > 0) {
  console.error(`${file}: not valid (${failing} error(s) or warning(s))`);
  process.exit(1);
}
const channels = document.channels().length;
const messages = document.components().messages().length;
console.log(`${file}: valid AsyncAPI ${document.version()} (${channels} channels, ${messages} messages)`);
