#!/usr/bin/env node
// A municipality's residents' office on the hub: answers each move it receives as the party it
// is (registers the arrival of a move to it, confirms the departure of a move from it), passing
// on the delivery's trace context. Prints one JSON line per thing that happened; stops cleanly
// on SIGTERM or SIGINT.
//
// Settings (environment):
//   HUB_BOOTSTRAP      bootstrap servers, comma-separated
//   PARTNER_ID         e.g. CH/MUN/1058/einwohnerdienste
//   PARTNER_KEY_FILE   the partner's Ed25519 private key, PKCS#8 PEM
//   PARTNER_KEY_ID     its id as registered with the hub
//   HUB_KEY_ID         the hub's delivery key id (`hub keys show --json`: key_id)
//   HUB_PUBLIC_KEY     its public key (`public_key`: 32 bytes in base64, or PEM)
//   BFS_NUMBER         the municipality's BFS number
//   SEEN_FILE          optional: where handled delivery ids are kept across restarts
import { readFileSync } from "node:fs";
import { PartnerClient, answerId } from "../src/client.mjs";
import { privateKeyFromPem, publicKeyFrom } from "../src/signing.mjs";

const MOVE_REPORTED = "ch.lu.hub.relocation.move-reported.v1";
const ARRIVAL_REGISTERED = "ch.lu.hub.relocation.arrival-registered.v1";
const DEPARTURE_CONFIRMED = "ch.lu.hub.relocation.departure-confirmed.v1";

function setting(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`municipality: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const partnerId = setting("PARTNER_ID");
const bfsNumber = Number(setting("BFS_NUMBER"));
const client = new PartnerClient({
  brokers: setting("HUB_BOOTSTRAP").split(","),
  partnerId,
  signingKey: privateKeyFromPem(readFileSync(setting("PARTNER_KEY_FILE"), "utf8")),
  keyId: setting("PARTNER_KEY_ID"),
  hubKeys: new Map([[setting("HUB_KEY_ID"), publicKeyFrom(setting("HUB_PUBLIC_KEY"))]]),
  seenFile: process.env.SEEN_FILE,
  consumer: { sessionTimeout: 6000, heartbeatInterval: 1000 },
});

/** What this office sends for a delivery: [event type, data] pairs. */
function answers(delivery) {
  const { event_type_delivered: type, data } = delivery.data;
  if (type !== MOVE_REPORTED) return [];
  const today = new Date().toISOString().slice(0, 10);
  const found = [];
  if (data.departure?.bfs_number === bfsNumber) {
    found.push([DEPARTURE_CONFIRMED, { municipality: data.departure, confirmed_on: today, remarks: null }]);
  }
  if (data.arrival?.bfs_number === bfsNumber) {
    found.push([ARRIVAL_REGISTERED, { municipality: data.arrival, registered_on: today, remarks: null }]);
  }
  return found;
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await client.stop();
  say({ event: "stopped" });
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

await client.start();
await client.consume({
  onJoined: () => say({ event: "joined", partner: partnerId }),
  onRefused: (refusal) => say({ event: "refused", ...refusal }),
  onDuplicate: (duplicate) => say({ event: "duplicate", ...duplicate }),
  onDelivery: async (delivery) => {
    say({
      event: "delivery",
      id: delivery.id,
      case: delivery.caseId,
      delivered: delivery.data.event_type_delivered,
      traceparent: delivery.traceparent ?? null,
    });
    for (const [type, data] of answers(delivery)) {
      const sent = await client.publish(type, data, {
        caseId: delivery.caseId,
        id: answerId(delivery.source, delivery.id, type),
        referenceId: delivery.id,
        action: "response",
        testDelivery: delivery.testDelivery,
        traceparent: delivery.traceparent,
      });
      const sentHeaders = Object.fromEntries(sent.map(([name, value]) => [name, String(value)]));
      say({ event: "published", type, case: delivery.caseId, id: sentHeaders.ce_id, traceparent: sentHeaders.traceparent ?? null });
    }
  },
});
