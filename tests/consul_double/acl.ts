/**
 * ACL checks, as an agent with `acl.enabled = true` and
 * `default_policy = "deny"` makes them, with one management token.
 *
 * - a request without a token uses the anonymous token, which the deny
 *   policy gives no rights: "Permission denied" (403)
 * - an unknown token: "ACL not found" (403)
 * - list endpoints filter what the token may not read instead of failing
 *   (`X-Consul-Results-Filtered-By-ACLs`)
 *
 * Sources: https://developer.hashicorp.com/consul/api-docs/api-structure#authentication,
 * https://developer.hashicorp.com/consul/docs/security/acl,
 * https://developer.hashicorp.com/consul/api-docs/kv#read-key (filtered
 * results), https://developer.hashicorp.com/consul/api-docs/txn (the ACL a
 * transaction needs depends on its operations).
 *
 * @module
 */

import { type Call, HttpError } from "./call.ts";

/** A permission Consul checks. */
export type Permission =
  | "key:read"
  | "key:write"
  | "session:read"
  | "session:write";

/** The ACL system of the double. */
export class Acl {
  readonly #management: string | undefined;

  /** ACLs are enabled when a management token is given. */
  constructor(managementToken: string | undefined) {
    this.#management = managementToken;
  }

  /**
   * Whether the request's token may do `permission`; throws "ACL not found"
   * for a token the agent does not know.
   */
  allows(call: Call, _permission: Permission): boolean {
    if (this.#management === undefined) return true;
    const token = call.token;
    if (token === undefined) return false;
    if (token === this.#management) return true;
    throw new HttpError(403, "ACL not found");
  }

  /** Throws "Permission denied" unless the token may do `permission`. */
  require(call: Call, permission: Permission, resource: string): void {
    if (!this.allows(call, permission)) throw denied(permission, resource);
  }
}

/** Consul's message when a token lacks a permission. */
export function denied(permission: Permission, resource: string): HttpError {
  return new HttpError(
    403,
    `Permission denied: anonymous token lacks permission '${permission}' on ${
      JSON.stringify(resource)
    }`,
  );
}
