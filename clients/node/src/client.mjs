// A partner's connection to the hub: publishes signed events on its own ingress topic and
// reads its own delivery topic, accepting only what the hub provably sent to it, once.
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { Kafka, Partitioners, logLevel } from "kafkajs";
import { signRecord, signatureProblem } from "./signing.mjs";
import {
  DELIVERY_TYPE,
  SCHEMA_BASE_URI,
  consumerGroup,
  deliveryTopic,
  ingressTopic,
  partnerSource,
} from "./topics.mjs";

/** A record's headers as a list of [name, Buffer] pairs; kafkajs gives a repeated name as an array. */
export function headerList(headers) {
  const list = [];
  for (const [name, value] of Object.entries(headers ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) list.push([name, item]);
  }
  return list;
}

function header(list, name) {
  const found = list.filter(([key]) => key === name);
  return found.length === 1 && found[0][1] != null ? Buffer.from(found[0][1]).toString("utf8") : undefined;
}

/**
 * The id of the answer to `deliveryId`: the same on every attempt, so that an answer sent again
 * after a crash (its delivery was not committed yet) is dropped by the hub as a duplicate.
 */
export function answerId(deliverySource, deliveryId, eventType) {
  const hex = createHash("sha256").update(`${deliverySource}\n${deliveryId}\n${eventType}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Remembers handled deliveries by ce_source and ce_id; optionally in a file, one per line. */
class SeenDeliveries {
  constructor(file) {
    this.file = file;
    this.seen = new Set(file && existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
  }
  has(key) {
    return this.seen.has(key);
  }
  add(key) {
    this.seen.add(key);
    if (this.file) appendFileSync(this.file, `${key}\n`);
  }
}

export class PartnerClient {
  /**
   * @param {object} options
   * @param {string[]} options.brokers bootstrap servers
   * @param {string} options.partnerId e.g. "CH/MUN/1058/einwohnerdienste"
   * @param {import("node:crypto").KeyObject} options.signingKey the partner's Ed25519 private key
   * @param {string} options.keyId its id as registered (`hub partner key add --key-id`)
   * @param {Map<string, import("node:crypto").KeyObject>} options.hubKeys trusted hub keys by key id
   * @param {string} [options.seenFile] where handled delivery ids are kept across restarts
   * @param {object} [options.kafka] more kafkajs client options (ssl, sasl, ...)
   * @param {object} [options.consumer] more kafkajs consumer options
   */
  constructor({ brokers, partnerId, signingKey, keyId, hubKeys, seenFile, kafka = {}, consumer = {} }) {
    this.partnerId = partnerId;
    this.signingKey = signingKey;
    this.keyId = keyId;
    this.hubKeys = hubKeys;
    this.seen = new SeenDeliveries(seenFile);
    this.kafka = new Kafka({ clientId: `partner-${partnerId}`, brokers, logLevel: logLevel.WARN, ...kafka });
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      // Murmur2, as the Java client and the hub partition by the key: a case stays in order.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.consumerOptions = { groupId: consumerGroup(partnerId), ...consumer };
    this.consumer = null;
  }

  async start() {
    await this.producer.connect();
  }

  async stop() {
    if (this.consumer) await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  /**
   * Sign and send one event of case `caseId` on this partner's ingress topic; resolves once the
   * broker acknowledged it (kafkajs retries on its own). Returns the headers sent.
   */
  async publish(eventType, data, { caseId, id, referenceId, traceparent, action = "new", testDelivery = false, time }) {
    const value = Buffer.from(JSON.stringify(data), "utf8");
    const headers = [
      ["ce_specversion", "1.0"],
      ["ce_id", id ?? crypto.randomUUID()],
      ["ce_source", partnerSource(this.partnerId)],
      ["ce_type", eventType],
      ["ce_time", (time ?? new Date()).toISOString()],
      ["ce_dataschema", `${SCHEMA_BASE_URI}${eventType}.json`],
      ["content-type", "application/json"],
      ["ce_businessprocessid", caseId],
      ["ce_action", action],
      ["ce_testdelivery", testDelivery ? "true" : "false"],
    ];
    if (referenceId) headers.push(["ce_referenceid", referenceId]);
    const signed = signRecord(headers, value, this.signingKey, this.keyId);
    // Not signed, so added afterwards: the trace the answered delivery belongs to.
    if (traceparent) signed.push(["traceparent", traceparent]);
    await this.producer.send({
      topic: ingressTopic(this.partnerId),
      acks: -1,
      messages: [{ key: caseId, value, headers: Object.fromEntries(signed) }],
    });
    return signed;
  }

  /**
   * Why a delivery record is not for this partner from the hub, or null: the hub's signature
   * over the record as received, then the type, the key (= the signed case id) and the recipient.
   */
  problemWith(headers, key, value) {
    const signature = signatureProblem(headers, value, this.hubKeys);
    if (signature) return { reason: "signature", detail: signature };
    if (header(headers, "ce_type") !== DELIVERY_TYPE) return { reason: "type", detail: `not ${DELIVERY_TYPE}` };
    const caseId = header(headers, "ce_businessprocessid");
    if (key === null || key === undefined || Buffer.from(key).toString("utf8") !== caseId) {
      return { reason: "key", detail: `keyed ${key === null ? "(none)" : Buffer.from(key).toString("utf8")}, not by its case ${caseId}` };
    }
    let data;
    try {
      data = JSON.parse(value.toString("utf8"));
    } catch {
      return { reason: "data", detail: "value is not JSON" };
    }
    if (data.recipient !== this.partnerId) {
      return { reason: "recipient", detail: `addressed to ${data.recipient}, not ${this.partnerId}` };
    }
    return null;
  }

  /**
   * Read this partner's deliveries until `stop()`. `onDelivery(delivery)` is called once per
   * delivery the hub sent to this partner; its offset is committed after it resolves. A record
   * that fails the checks, or repeats a handled ce_id, is committed and reported instead.
   */
  async consume({ onDelivery, onRefused = () => {}, onDuplicate = () => {}, onJoined = () => {} }) {
    this.consumer = this.kafka.consumer(this.consumerOptions);
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => onJoined(event));
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: deliveryTopic(this.partnerId), fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const commit = () =>
          this.consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        const headers = headerList(message.headers);
        const value = message.value ?? Buffer.alloc(0);
        const problem = this.problemWith(headers, message.key, value);
        if (problem) {
          onRefused({ ...problem, topic, partition, offset: message.offset, id: header(headers, "ce_id") });
          await commit();
          return;
        }
        const source = header(headers, "ce_source");
        const id = header(headers, "ce_id");
        const dedupKey = `${source} ${id}`;
        if (this.seen.has(dedupKey)) {
          onDuplicate({ id, source, topic, partition, offset: message.offset });
          await commit();
          return;
        }
        await onDelivery({
          id,
          source,
          caseId: header(headers, "ce_businessprocessid"),
          traceparent: header(headers, "traceparent"),
          testDelivery: header(headers, "ce_testdelivery") === "true",
          data: JSON.parse(value.toString("utf8")),
        });
        this.seen.add(dedupKey);
        await commit();
      },
    });
  }
}
