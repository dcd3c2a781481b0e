/**
 * Registers the built-in backends, one descriptor each. Every descriptor
 * loads its backend's module, and the npm client it wraps, only when a store
 * of it is opened.
 *
 * @module
 */

import { type BackendDescriptor, register } from "../core/registry.ts";
import { consulBackend } from "./consul/backend.ts";
import { dynamodbBackend } from "./dynamodb/backend.ts";
import { etcdBackend } from "./etcd/backend.ts";
import { fileBackend } from "./file/backend.ts";
import { memoryBackend } from "./memory/backend.ts";
import { redisBackend } from "./redis/backend.ts";
import { zookeeperBackend } from "./zookeeper/backend.ts";

/** The built-in backends' descriptors, in the order they register. */
export const builtinBackends: readonly BackendDescriptor[] = Object.freeze([
  memoryBackend,
  fileBackend,
  redisBackend,
  etcdBackend,
  consulBackend,
  zookeeperBackend,
  dynamodbBackend,
]);

for (const backend of builtinBackends) register(backend);
