// The signed form of docs/partners/signing.md, implemented from that text alone with
// node:crypto (no package): builds each vector's form from its headers and value, compares it
// with the vector's, verifies the signature and signs again. Prints one JSON line per vector.
// Usage: node signing_vectors.mjs <signing-vectors.json>
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const ATTRIBUTE = /^ce_[a-z0-9]+$/;

function signedForm(headers, value) {
  const chosen = new Map();
  for (const [name, text] of headers) {
    let signedName = null;
    if (name.toLowerCase() === "content-type") signedName = "content-type";
    else if (name.startsWith("ce_") && name !== "ce_signature") {
      if (!ATTRIBUTE.test(name)) throw new Error(`ambiguous header name ${name}`);
      signedName = name;
    }
    if (signedName === null) continue;
    if (chosen.has(signedName)) throw new Error(`repeated header ${signedName}`);
    chosen.set(signedName, Buffer.from(text, "utf8"));
  }
  const names = [...chosen.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const parts = [Buffer.from("ch.lu.hub.event-signature.v2\n")];
  for (const name of names) {
    const bytes = chosen.get(name);
    parts.push(Buffer.from(`${name}:${bytes.length}:`), bytes, Buffer.from("\n"));
  }
  const digest = createHash("sha256").update(value).digest("hex");
  parts.push(Buffer.from(`data-sha256:${digest}\n`));
  return Buffer.concat(parts);
}

const file = JSON.parse(readFileSync(process.argv[2], "utf8"));
const publicKey = createPublicKey(file.key.public_key_pem);
const privateKey = createPrivateKey(file.key.private_key_pem);
const derived = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
for (const vector of file.vectors) {
  const form = signedForm(vector.headers, Buffer.from(vector.value, "utf8"));
  const [[, signature]] = vector.headers.filter(([name]) => name === "ce_signature");
  const tampered = Buffer.from(form);
  tampered[tampered.length - 2] ^= 1;
  console.log(
    JSON.stringify({
      name: vector.name,
      public_key_derived: derived.toString("hex") === file.key.public_key_hex,
      form_matches: form.equals(Buffer.from(vector.signed_form_base64, "base64")),
      verifies: verify(null, form, publicKey, Buffer.from(signature, "base64")),
      tampered_verifies: verify(null, tampered, publicKey, Buffer.from(signature, "base64")),
      signed_again: sign(null, form, privateKey).toString("base64"),
    }),
  );
}
