/**
 * Where the data lives: one server (alone or behind Sentinel), or the
 * masters of a Redis Cluster, each serving some of the hash slots.
 *
 * The driver asks it which connection runs commands, which connections to
 * `SCAN` (every master: each holds only its slots' keys), which keys one
 * command may take together (on a cluster, only keys of one slot), and the
 * notifications ask it which nodes to listen to (keyspace notifications are
 * local to the node where the key lives) and when that set may have changed.
 *
 * @module
 */

import { Cluster, type Redis } from "ioredis";
import { NotReachableError } from "../../core/errors.ts";
import { type Connected, type Endpoint, nodeOptions } from "./connection.ts";
import { boundOutages } from "./outage.ts";
import { keySlot, SLOT_COUNT } from "./slots.ts";

/** A server whose keyspace notifications the store listens to. */
export interface NotifyingNode {
  /** `host:port` on a cluster; the same for the life of a single server. */
  readonly id: string;
  /** How to connect to it. */
  readonly endpoint: Endpoint;
  /** A hash slot it serves, where a probe key may be written. */
  readonly slot: number;
}

/** Names held by one server: see {@linkcode Topology.byNode}. */
export interface NodeGroup {
  /** The connection to the server, if the client has one. */
  readonly node: Redis | undefined;
  /** Where the names are in the list that was grouped. */
  readonly indexes: number[];
}

/** The deployment behind one store. */
export class Topology {
  /** Runs commands and scripts (routed by slot on a cluster). */
  readonly client: Redis | Cluster;
  /** For messages: `"redis at host:port"`, `"redis cluster at ..."`. */
  readonly what: string;
  readonly #endpoint: Endpoint;
  readonly #cluster: Cluster | undefined;
  readonly #unbound: () => void = () => {};

  /**
   * @param connected The open command connection.
   * @param endpoint How it was opened (nodes of a cluster are opened alike).
   */
  constructor(connected: Connected, endpoint: Endpoint) {
    this.client = connected.client;
    this.what = connected.what;
    this.#endpoint = endpoint;
    if (connected.client instanceof Cluster) {
      this.#cluster = connected.client;
      this.#unbound = boundOutages(connected.client, connected.what);
    }
  }

  /** Whether this is a Redis Cluster, where a command takes one slot. */
  get isCluster(): boolean {
    return this.#cluster !== undefined;
  }

  /**
   * Splits keys into groups that one command may take together: all of them
   * on a single server, those of each hash slot on a cluster.
   */
  bySlot(keys: readonly string[]): string[][] {
    if (!this.#cluster) return keys.length === 0 ? [] : [[...keys]];
    const groups = new Map<number, string[]>();
    for (const key of keys) {
      const slot = keySlot(key);
      const group = groups.get(slot);
      if (group) group.push(key);
      else groups.set(slot, [key]);
    }
    return [...groups.values()];
  }

  /**
   * A connection to every master, to `SCAN` them all. On a cluster they are
   * the owners of the slots as last learnt; a master the client lost is
   * found again by refreshing the layout once, or the call fails (a failover
   * may be under way).
   */
  async masters(): Promise<Redis[]> {
    const cluster = this.#cluster;
    if (!cluster) return [this.client as Redis];
    let connections = this.#masterConnections(cluster);
    if (connections === undefined) {
      await this.refreshed();
      connections = this.#masterConnections(cluster);
    }
    if (connections === undefined) {
      throw new NotReachableError(
        `Not every master of the ${this.what} is reachable (a failover may be under way)`,
      );
    }
    return connections;
  }

  /**
   * Groups names by the server that holds them: one group on a single
   * server; on a cluster, one per master as the layout was last learnt
   * (`node` is missing for slots whose master the client has no connection
   * to yet). Each group lists the positions of its names in `names`.
   */
  byNode(names: readonly string[]): NodeGroup[] {
    const cluster = this.#cluster;
    if (!cluster) {
      return [{ node: this.client as Redis, indexes: names.map((_, i) => i) }];
    }
    const connections = new Map<string, Redis>();
    for (const node of cluster.nodes("all")) {
      connections.set(`${node.options.host}:${node.options.port}`, node);
    }
    const groups = new Map<string | undefined, NodeGroup>();
    names.forEach((name, i) => {
      const id = cluster.slots[keySlot(name)]?.[0];
      const node = id === undefined ? undefined : connections.get(id);
      const at = node === undefined ? undefined : id;
      const group = groups.get(at);
      if (group) group.indexes.push(i);
      else groups.set(at, { node, indexes: [i] });
    });
    return [...groups.values()];
  }

  /** The servers to hear keyspace notifications from: every master. */
  notifyingNodes(): NotifyingNode[] {
    const cluster = this.#cluster;
    if (!cluster) return [{ id: "server", endpoint: this.#endpoint, slot: 0 }];
    const nodes: NotifyingNode[] = [];
    for (const [id, slot] of masterSlots(cluster)) {
      const split = id.lastIndexOf(":");
      const host = id.slice(0, split);
      const port = Number(id.slice(split + 1));
      nodes.push({
        id,
        slot,
        endpoint: {
          what: `redis cluster node ${id}`,
          options: { ...nodeOptions(this.#endpoint), host, port },
          db: 0,
          connectTimeout: this.#endpoint.connectTimeout,
        },
      });
    }
    return nodes;
  }

  /**
   * Calls `listener` whenever the cluster's layout was read again, so the
   * masters may have changed. Returns what stops it.
   */
  onChange(listener: () => void): () => void {
    const cluster = this.#cluster;
    if (!cluster) return () => {};
    cluster.on("refresh", listener);
    return () => cluster.off("refresh", listener);
  }

  /** Drops the connections at once. */
  close(): void {
    this.#unbound();
    this.client.disconnect();
  }

  /** Asks the cluster for its layout again (a master seems to be gone). */
  refresh(): void {
    this.#cluster?.refreshSlotsCache();
  }

  // The client's connection to the owner of every slot, or undefined when it
  // has none to one of them.
  #masterConnections(cluster: Cluster): Redis[] | undefined {
    const byId = new Map<string, Redis>();
    for (const node of cluster.nodes("all")) {
      byId.set(`${node.options.host}:${node.options.port}`, node);
    }
    const connections: Redis[] = [];
    for (const id of masterSlots(cluster).keys()) {
      const node = byId.get(id);
      if (!node) return undefined;
      connections.push(node);
    }
    return connections;
  }

  /** Reads the cluster's layout again; resolves once it was (or failed). */
  refreshed(): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return Promise.resolve();
    return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
  }
}

// Every master as `host:port`, with the first slot it serves.
function masterSlots(cluster: Cluster): Map<string, number> {
  const masters = new Map<string, number>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const id = cluster.slots[slot]?.[0];
    if (id !== undefined && !masters.has(id)) masters.set(id, slot);
  }
  return masters;
}
