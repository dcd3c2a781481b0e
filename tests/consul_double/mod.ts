/**
 * A Consul HTTP API double for the tests: a single-server agent on
 * 127.0.0.1 implementing the KV, session, transaction, status and snapshot
 * endpoints with Consul's documented semantics (each file cites the pages
 * it follows). It lives in the test tree and ships in no package.
 *
 * @example
 * ```ts ignore
 * import { startConsulDouble } from "./consul_double/mod.ts";
 *
 * const consul = await startConsulDouble({ sessionTtlMinMs: 1_000 });
 * console.log(consul.address); // 127.0.0.1:PORT
 * await consul.close();
 * ```
 *
 * @module
 */

export {
  type ConsulDouble,
  type DoubleOptions,
  type DoubleTls,
  startConsulDouble,
} from "./server.ts";
export { MAX_TXN_OPS } from "./txn_endpoint.ts";
export { SESSION_TTL_MULTIPLIER } from "./sessions.ts";
