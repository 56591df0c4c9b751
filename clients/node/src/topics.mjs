// Topic naming and identities of a partner (docs/partners/asyncapi.yaml).

/** "CH/MUN/1061/einwohnerdienste" -> "ch.mun.1061.einwohnerdienste". */
export function partnerSlug(partnerId) {
  return partnerId.toLowerCase().replace(/[^a-z0-9-]+/g, ".").replace(/^\.+|\.+$/g, "");
}

export const ingressTopic = (partnerId) => `hub.ingress.${partnerSlug(partnerId)}`;
export const deliveryTopic = (partnerId) => `hub.delivery.${partnerSlug(partnerId)}`;
export const partnerSource = (partnerId) => `urn:ch:lu:hub:partner:${partnerId}`;
export const consumerGroup = (partnerId) => `partner.${partnerId}`;
export const HUB_DELIVERY_SOURCE = "urn:ch:lu:hub:service:registry";
export const DELIVERY_TYPE = "ch.lu.hub.case.delivery.v1";
export const SCHEMA_BASE_URI = "https://hub.stadtluzern.ch/schemas/";
