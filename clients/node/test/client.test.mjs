// The client's signing and checks, against the normative test vectors of docs/partners/signing.md
// and records built here; no broker needed (`npm test`, or `node --test test/`).
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { PartnerClient, answerId, headerList } from "../src/client.mjs";
import { privateKeyFromPem, publicKeyFrom, signRecord, signatureProblem, signedForm } from "../src/signing.mjs";
import { deliveryTopic, ingressTopic, partnerSlug } from "../src/topics.mjs";

const VECTORS = JSON.parse(readFileSync(new URL("../../../docs/partners/signing-vectors.json", import.meta.url)));
const VECTOR_KEY = privateKeyFromPem(VECTORS.key.private_key_pem);
const VECTOR_PUBLIC = publicKeyFrom(VECTORS.key.public_key_base64);

for (const vector of VECTORS.vectors) {
  test(`signing vector ${vector.name}: form, verification, signature`, () => {
    const value = Buffer.from(vector.value, "utf8");
    assert.deepEqual(signedForm(vector.headers, value), Buffer.from(vector.signed_form_base64, "base64"));
    const trusted = new Map([[VECTORS.key.key_id, VECTOR_PUBLIC]]);
    assert.equal(signatureProblem(vector.headers, value, trusted), null);
    assert.equal(signatureProblem(vector.headers, Buffer.concat([value, Buffer.from(" ")]), trusted),
      "bad signature: forged, or changed after signing");
    const unsigned = vector.headers.filter(([name]) => name !== "ce_signature" && name !== "ce_sigkeyid");
    const signed = signRecord(unsigned, value, VECTOR_KEY, VECTORS.key.key_id);
    assert.deepEqual(signed.at(-1), ["ce_signature", vector.signature]);
  });
}

test("a repeated signed header or a header that is no attribute name is refused", () => {
  const trusted = new Map([[VECTORS.key.key_id, VECTOR_PUBLIC]]);
  const [vector] = VECTORS.vectors;
  const repeated = [...vector.headers, ["ce_id", "again"]];
  assert.match(signatureProblem(repeated, Buffer.from(vector.value), trusted), /ambiguous headers: header ce_id appears more than once/);
  assert.match(signatureProblem([...vector.headers, ["ce_My", "x"]], Buffer.from(vector.value), trusted), /no CloudEvents attribute/);
  assert.equal(signatureProblem(vector.headers, Buffer.from(vector.value), new Map()), "unknown signing key test-vector-2026");
});

test("topics follow the hub's slug rule", () => {
  assert.equal(partnerSlug("CH/MUN/1061/einwohnerdienste"), "ch.mun.1061.einwohnerdienste");
  assert.equal(partnerSlug("ch/com/Firma_AG/edv--x"), "ch.com.firma.ag.edv--x");
  assert.equal(ingressTopic("CH/CAN/LU/steuerverwaltung"), "hub.ingress.ch.can.lu.steuerverwaltung");
  assert.equal(deliveryTopic("CH/CAN/LU/steuerverwaltung"), "hub.delivery.ch.can.lu.steuerverwaltung");
});

test("an answer's id is the same on every attempt and differs per delivery and type", () => {
  const first = answerId("urn:ch:lu:hub:service:registry", "d-1", "x.v1");
  assert.equal(first, answerId("urn:ch:lu:hub:service:registry", "d-1", "x.v1"));
  assert.notEqual(first, answerId("urn:ch:lu:hub:service:registry", "d-2", "x.v1"));
  assert.notEqual(first, answerId("urn:ch:lu:hub:service:registry", "d-1", "y.v1"));
  assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("a delivery is accepted only if the hub signed it, keyed by its case, for this partner", () => {
  const hub = generateKeyPairSync("ed25519");
  const me = "CH/MUN/1058/einwohnerdienste";
  const client = new PartnerClient({
    brokers: ["127.0.0.1:1"], partnerId: me, signingKey: VECTOR_KEY, keyId: "k", hubKeys: new Map([["hub-1", hub.publicKey]]),
  });
  const record = (recipient, type = "ch.lu.hub.case.delivery.v1") => {
    const value = Buffer.from(JSON.stringify({ recipient, data: {} }));
    const headers = signRecord([["ce_id", "d-1"], ["ce_type", type], ["ce_businessprocessid", "case-1"]], value, hub.privateKey, "hub-1");
    // As kafkajs hands them over: an object of Buffers.
    return { headers: headerList(Object.fromEntries(headers.map(([n, v]) => [n, Buffer.from(v)]))), value };
  };
  const genuine = record(me);
  assert.equal(client.problemWith(genuine.headers, Buffer.from("case-1"), genuine.value), null);
  assert.equal(client.problemWith(genuine.headers, Buffer.from("case-2"), genuine.value).reason, "key");
  assert.equal(client.problemWith(genuine.headers, null, genuine.value).reason, "key");
  const tampered = Buffer.from(genuine.value.toString().replace("{}", '{"x":1}'));
  assert.equal(client.problemWith(genuine.headers, Buffer.from("case-1"), tampered).reason, "signature");
  const other = record("CH/MUN/1059/einwohnerdienste");
  assert.equal(client.problemWith(other.headers, Buffer.from("case-1"), other.value).reason, "recipient");
  const notDelivery = record(me, "ch.lu.hub.case.completed.v1");
  assert.equal(client.problemWith(notDelivery.headers, Buffer.from("case-1"), notDelivery.value).reason, "type");
});
