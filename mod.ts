/**
 * Valkeyrie: one API over distributed key/value stores — Redis, etcd,
 * ZooKeeper, Consul, DynamoDB — and an embedded engine.
 *
 * Open a store by URL; the scheme picks the backend, and only that backend's
 * module is loaded:
 *
 * ```ts
 * import { openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("memory:");
 * await store.put("config/db/host", "10.0.0.5");
 * const pair = await store.get("config/db/host");
 * console.log(new TextDecoder().decode(pair!.value));
 * ```
 *
 * @module
 */

import "./backends/builtins.ts";

export {
  backends,
  newStore,
  openStore,
  register,
  unregister,
} from "./core/registry.ts";
export type {
  BackendDescriptor,
  FactoryConfig,
  StoreFactory,
} from "./core/registry.ts";
export { parseStoreUrl } from "./core/url.ts";
export type { StoreUrl } from "./core/url.ts";
export type {
  BooleanSetting,
  NumberRule,
  NumberSetting,
  Setting,
  SettingBase,
  SettingsSchema,
  StringSetting,
  ValueSetting,
} from "./core/config.ts";
// For writing a backend: implement a Driver, extend BaseStore, register().
export { BaseStore } from "./core/store.ts";
export {
  LOCK_HOLD_CHANNEL,
  TRACE_PREFIX,
  TRACED_OPERATIONS,
  WATCH_LAG_CHANNEL,
} from "./core/tracing.ts";
export { expiresAt } from "./core/expiry.ts";
export { StoreEvents } from "./core/events.ts";
export type { DriverEvent, StoreEvent, StoreEventType } from "./core/events.ts";
export { copy, dump, restore } from "./core/transfer.ts";
export type {
  CopyOptions,
  DumpRecord,
  TransferOptions,
} from "./core/transfer.ts";
export type {
  LockHoldMessage,
  TraceContext,
  WatchLagMessage,
} from "./core/tracing.ts";
export type { BaseStoreOptions } from "./core/store.ts";
export type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverPut,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  IncrementOutcome,
  KeySink,
  LockLease,
  ReplaySink,
  ScanRange,
  TreeSink,
} from "./core/driver.ts";
export type {
  AcquireOptions,
  AtomicOperation,
  CachedReads,
  CommitResult,
  KVPair,
  Lock,
  LockOptions,
  OpenOptions,
  PutEntry,
  PutOptions,
  ReadOptions,
  ReadWriteLock,
  ReadWriteLockOptions,
  ScanIterator,
  ScanOptions,
  Semaphore,
  SemaphoreOptions,
  SignalOptions,
  Store,
  StoreLimits,
  StoreOptions,
  TlsOptions,
  WatchEvent,
  WatchEventsOptions,
  WriteOptions,
} from "./core/types.ts";
export {
  BulkWriteError,
  CallNotSupportedError,
  InvalidArgumentError,
  InvalidConfigurationError,
  InvalidKeyError,
  isStoreError,
  KeyError,
  KeyExistsError,
  KeyModifiedError,
  KeyNotFoundError,
  LockLostError,
  NotReachableError,
  PreviousNotSpecifiedError,
  StoreClosedError,
  StoreError,
  UnknownBackendError,
  ValueTooLargeError,
} from "./core/errors.ts";
