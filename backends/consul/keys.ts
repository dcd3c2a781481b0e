/**
 * Key names Consul refuses. Since 1.21.6 (CVE-2025-11392) the agent's KV
 * endpoint rejects path traversal sequences and leading or trailing spaces
 * in a key unless it runs with `disable_kv_key_validation`
 * (https://github.com/hashicorp/consul/pull/22850). Refusing them here
 * gives an `InvalidKeyError` before any I/O instead of a 400 from one
 * Consul version and not another.
 *
 * @module
 */

const TRAVERSALS = [
  "../",
  "..\\",
  "%2e%2e%2f",
  "%2e%2e/",
  "..%2f",
  "%2e%2e%5c",
];

/** Why Consul would refuse the full key `key`, or `undefined`. */
export function consulKeyProblem(key: string): string | undefined {
  for (const sequence of TRAVERSALS) {
    if (key.includes(sequence)) {
      return `Consul refuses keys holding the path traversal sequence ${
        JSON.stringify(sequence)
      }`;
    }
  }
  if (key.trim() !== key) {
    return "Consul refuses keys that begin or end with a space";
  }
  return undefined;
}
