/**
 * The ZooKeeper client protocol as this backend speaks it: operation codes,
 * error codes, node modes, and the request and reply records it uses, from
 * ZooKeeper's `zookeeper.jute` and `ZooDefs` (3.6 and later: TTL nodes,
 * persistent watches, `SetWatches2`).
 *
 * @module
 */

import { type JuteReader, JuteWriter } from "./jute.ts";

/** Operation codes (`ZooDefs.OpCode`). */
export const Op = {
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  getChildren: 8,
  sync: 9,
  ping: 11,
  check: 13,
  multi: 14,
  create2: 15,
  removeWatches: 18,
  createContainer: 19,
  createTTL: 21,
  auth: 100,
  setWatches2: 105,
  addWatch: 106,
  closeSession: -11,
  error: -1,
} as const;

/** Transaction ids the protocol reserves (`ClientCnxn`). */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

/** Error codes (`KeeperException.Code`) this backend tells apart. */
export const Code = {
  ok: 0,
  runtimeInconsistency: -2,
  connectionLoss: -4,
  unimplemented: -6,
  badArguments: -8,
  noNode: -101,
  noAuth: -102,
  badVersion: -103,
  nodeExists: -110,
  notEmpty: -111,
  sessionExpired: -112,
  invalidAcl: -114,
  authFailed: -115,
  sessionMoved: -118,
  noWatcher: -121,
} as const;

/** Every code of ZooKeeper 3.8, for messages. */
const CODE_NAMES: Record<number, string> = {
  [-1]: "SYSTEMERROR",
  [-2]: "RUNTIMEINCONSISTENCY",
  [-3]: "DATAINCONSISTENCY",
  [-4]: "CONNECTIONLOSS",
  [-5]: "MARSHALLINGERROR",
  [-6]: "UNIMPLEMENTED",
  [-7]: "OPERATIONTIMEOUT",
  [-8]: "BADARGUMENTS",
  [-12]: "UNKNOWNSESSION",
  [-13]: "NEWCONFIGNOQUORUM",
  [-14]: "RECONFIGINPROGRESS",
  [-100]: "APIERROR",
  [-101]: "NONODE",
  [-102]: "NOAUTH",
  [-103]: "BADVERSION",
  [-108]: "NOCHILDRENFOREPHEMERALS",
  [-110]: "NODEEXISTS",
  [-111]: "NOTEMPTY",
  [-112]: "SESSIONEXPIRED",
  [-113]: "INVALIDCALLBACK",
  [-114]: "INVALIDACL",
  [-115]: "AUTHFAILED",
  [-118]: "SESSIONMOVED",
  [-119]: "NOTREADONLY",
  [-120]: "EPHEMERALONLOCALSESSION",
  [-121]: "NOWATCHER",
  [-122]: "REQUESTTIMEOUT",
  [-123]: "RECONFIGDISABLED",
  [-124]: "SESSIONCLOSEDREQUIRESASLAUTH",
  [-125]: "QUOTAEXCEEDED",
  [-127]: "THROTTLEDOP",
};

/** The name ZooKeeper gives an error code: `NONODE`. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `error ${code}`;
}

/** Node creation flags (`CreateMode`). */
export const Mode = {
  persistent: 0,
  ephemeralSequential: 3,
  container: 4,
  persistentWithTtl: 5,
} as const;

/** Watch event types (`Watcher.Event.EventType`). */
export const EventType = {
  created: 1,
  deleted: 2,
  dataChanged: 3,
  childrenChanged: 4,
} as const;

/** Modes of `addWatch` (`ZooDefs.AddWatchModes`). */
export const WatchMode = { persistent: 0, persistentRecursive: 1 } as const;

/** `removeWatches` type removing every watch of the session on a path. */
export const WATCHER_TYPE_ANY = 3;

/** Permission bits (`ZooDefs.Perms`). */
export const Perms = {
  read: 1,
  write: 2,
  create: 4,
  delete: 8,
  admin: 16,
  all: 31,
} as const;

/** A znode's metadata. */
export interface Stat {
  czxid: bigint;
  mzxid: bigint;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

/** One access control entry. */
export interface Acl {
  perms: number;
  scheme: string;
  id: string;
}

/** A watch notification. */
export interface WatcherEvent {
  type: number;
  state: number;
  path: string;
}

export function readStat(r: JuteReader): Stat {
  return {
    czxid: r.long(),
    mzxid: r.long(),
    ctime: Number(r.long()),
    mtime: Number(r.long()),
    version: r.int(),
    cversion: r.int(),
    aversion: r.int(),
    ephemeralOwner: r.long(),
    dataLength: r.int(),
    numChildren: r.int(),
    pzxid: r.long(),
  };
}

export function writeAcls(w: JuteWriter, acls: readonly Acl[]): void {
  w.int(acls.length);
  for (const acl of acls) w.int(acl.perms).string(acl.scheme).string(acl.id);
}

export function readAcls(r: JuteReader): Acl[] {
  const count = r.int();
  const acls: Acl[] = [];
  for (let i = 0; i < count; i++) {
    acls.push({ perms: r.int(), scheme: r.string(), id: r.string() });
  }
  return acls;
}

export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return { type: r.int(), state: r.int(), path: r.string() };
}

/** What creating a node needs. */
export interface CreateSpec {
  path: string;
  /** `null` makes a node without data (ZooKeeper keeps it apart from empty). */
  data: Uint8Array | null;
  acl: readonly Acl[];
  mode: number;
  /** Milliseconds, for `Mode.persistentWithTtl`. */
  ttl?: number;
}

/** The opcode that creates `spec`: TTL nodes need their own request. */
export function createOp(spec: CreateSpec, withStat: boolean): number {
  if (spec.mode === Mode.persistentWithTtl) return Op.createTTL;
  if (spec.mode === Mode.container) return Op.createContainer;
  return withStat ? Op.create2 : Op.create;
}

export function writeCreate(w: JuteWriter, spec: CreateSpec): void {
  w.string(spec.path).buffer(spec.data);
  writeAcls(w, spec.acl);
  w.int(spec.mode);
  if (spec.mode === Mode.persistentWithTtl) w.long(BigInt(spec.ttl!));
}

/** One operation of a `multi`. */
export type MultiOp =
  | { type: "create"; spec: CreateSpec }
  | { type: "delete"; path: string; version: number }
  | { type: "setData"; path: string; data: Uint8Array | null; version: number }
  | { type: "check"; path: string; version: number };

/** The result of one operation of a `multi`. */
export interface MultiResult {
  /** `Code.ok`, or why this operation failed. */
  err: number;
  /** The node's stat after a create or setData. */
  stat?: Stat;
}

/** Writes the body of a `multi` request. */
export function writeMulti(w: JuteWriter, ops: readonly MultiOp[]): void {
  for (const op of ops) {
    switch (op.type) {
      case "create":
        w.int(createOp(op.spec, false)).bool(false).int(-1);
        writeCreate(w, op.spec);
        break;
      case "delete":
        w.int(Op.delete).bool(false).int(-1);
        w.string(op.path).int(op.version);
        break;
      case "setData":
        w.int(Op.setData).bool(false).int(-1);
        w.string(op.path).buffer(op.data).int(op.version);
        break;
      case "check":
        w.int(Op.check).bool(false).int(-1);
        w.string(op.path).int(op.version);
        break;
    }
  }
  w.int(-1).bool(true).int(-1);
}

/** Reads the body of a `multi` reply: one result per operation. */
export function readMulti(r: JuteReader): MultiResult[] {
  const results: MultiResult[] = [];
  while (true) {
    const type = r.int();
    const done = r.bool();
    r.int(); // The header's error; an error result carries its own.
    if (done) return results;
    switch (type) {
      case Op.create:
        r.string();
        results.push({ err: Code.ok });
        break;
      case Op.create2:
      case Op.createTTL:
      case Op.createContainer:
        r.string();
        results.push({ err: Code.ok, stat: readStat(r) });
        break;
      case Op.setData:
        results.push({ err: Code.ok, stat: readStat(r) });
        break;
      case Op.delete:
      case Op.check:
        results.push({ err: Code.ok });
        break;
      case Op.error:
        results.push({ err: r.int() });
        break;
      default:
        throw new RangeError(`Unknown result type ${type} in a multi reply`);
    }
  }
}

/** The connect request that opens or resumes a session. */
export function connectFrame(
  lastZxid: bigint,
  timeout: number,
  sessionId: bigint,
  password: Uint8Array,
): Uint8Array {
  return new JuteWriter()
    .int(0) // protocol version
    .long(lastZxid)
    .int(timeout)
    .long(sessionId)
    .buffer(password)
    .bool(false) // not a read-only client
    .frame();
}

/** The server's answer to a connect request. */
export interface ConnectReply {
  /** The negotiated session timeout; 0 or less when the session expired. */
  timeout: number;
  sessionId: bigint;
  password: Uint8Array;
}

export function readConnectReply(r: JuteReader): ConnectReply {
  r.int(); // protocol version
  const timeout = r.int();
  const sessionId = r.long();
  const password = r.buffer() ?? new Uint8Array(16);
  return { timeout, sessionId, password };
}

/** A request frame: header, then a body. */
export function requestFrame(
  xid: number,
  op: number,
  body?: (w: JuteWriter) => void,
): Uint8Array {
  const w = new JuteWriter().int(xid).int(op);
  body?.(w);
  return w.frame();
}
