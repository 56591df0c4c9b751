// The signed form of docs/partners/signing.md with node:crypto's Ed25519: what a record's
// signature covers, signing a record about to be sent, verifying one as received.
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";

export const VERSION_LINE = "ch.lu.hub.event-signature.v2\n";
export const KEY_ID_HEADER = "ce_sigkeyid";
export const SIGNATURE_HEADER = "ce_signature";
const ATTRIBUTE = /^ce_[a-z0-9]+$/;

export class AmbiguousHeaders extends Error {}

/** Header values as bytes; strings are UTF-8 text. */
function bytes(value) {
  if (value === null || value === undefined) return null;
  return Buffer.isBuffer(value) ? value : Buffer.from(String(value), "utf8");
}

/**
 * The headers a signature covers, by signed name in ascending byte order (section 1).
 * `headers` is a list of [name, value] pairs exactly as sent or received.
 */
export function signedHeaders(headers) {
  const chosen = new Map();
  for (const [name, value] of headers) {
    let signedName = null;
    if (name.toLowerCase() === "content-type") signedName = "content-type";
    else if (name.startsWith("ce_") && name !== SIGNATURE_HEADER) {
      if (!ATTRIBUTE.test(name)) throw new AmbiguousHeaders(`header ${name} is no CloudEvents attribute`);
      signedName = name;
    }
    if (signedName === null) continue;
    if (chosen.has(signedName)) throw new AmbiguousHeaders(`header ${signedName} appears more than once`);
    const raw = bytes(value);
    if (raw === null) throw new AmbiguousHeaders(`header ${signedName} has no value (null)`);
    chosen.set(signedName, raw);
  }
  return [...chosen.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** The bytes the signature covers (section 2). */
export function signedForm(headers, value) {
  const parts = [Buffer.from(VERSION_LINE)];
  for (const [name, raw] of signedHeaders(headers)) {
    parts.push(Buffer.from(`${name}:${raw.length}:`), raw, Buffer.from("\n"));
  }
  const digest = createHash("sha256").update(value ?? Buffer.alloc(0)).digest("hex");
  parts.push(Buffer.from(`data-sha256:${digest}\n`));
  return Buffer.concat(parts);
}

/** `headers` with `ce_sigkeyid` and then `ce_signature` over everything (section 3). */
export function signRecord(headers, value, privateKey, keyId) {
  const withKeyId = [...headers.filter(([name]) => name !== KEY_ID_HEADER && name !== SIGNATURE_HEADER), [KEY_ID_HEADER, keyId]];
  const signature = sign(null, signedForm(withKeyId, value), privateKey).toString("base64");
  return [...withKeyId, [SIGNATURE_HEADER, signature]];
}

/**
 * Why a record as received is not signed by one of `trustedKeys` (key id -> KeyObject), or null
 * if it is (section 3, "To verify a record", steps 2 to 4).
 */
export function signatureProblem(headers, value, trustedKeys) {
  const signatures = headers.filter(([name]) => name === SIGNATURE_HEADER);
  const keyIds = headers.filter(([name]) => name === KEY_ID_HEADER);
  if (signatures.length !== 1 || keyIds.length !== 1) return "unsigned: needs one ce_signature and one ce_sigkeyid";
  const keyId = bytes(keyIds[0][1]).toString("utf8");
  const key = trustedKeys.get(keyId);
  if (key === undefined) return `unknown signing key ${keyId}`;
  const signature = Buffer.from(bytes(signatures[0][1]).toString("utf8"), "base64");
  if (signature.length !== 64) return "ce_signature is not 64 bytes of base64";
  let form;
  try {
    form = signedForm(headers, value);
  } catch (error) {
    if (error instanceof AmbiguousHeaders) return `ambiguous headers: ${error.message}`;
    throw error;
  }
  return verify(null, form, key, signature) ? null : "bad signature: forged, or changed after signing";
}

/** A private key from PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes). */
export function privateKeyFromPem(pem) {
  return createPrivateKey(pem);
}

/** A public key from PEM, or from the 32 raw bytes in base64 (`hub keys show --json`). */
export function publicKeyFrom(text) {
  if (text.includes("BEGIN PUBLIC KEY")) return createPublicKey(text);
  const raw = Buffer.from(text.trim(), "base64");
  if (raw.length !== 32) throw new Error(`an Ed25519 public key has 32 bytes, not ${raw.length}`);
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}
