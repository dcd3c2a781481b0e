/**
 * A history recorder for key/value workloads: every operation with the time
 * it was invoked and the time it completed (one clock, `performance.now()`
 * of the recording process), the client that ran it, its arguments and its
 * outcome:
 *
 * - `ok`: it took effect, with what it returned (the pair read, the new
 *   `lastIndex`);
 * - `failed`: it surely did not take effect (a CAS rejected with
 *   `KeyModifiedError` / `KeyExistsError` / `KeyNotFoundError`, a commit
 *   answered `{ ok: false }`, a validation error);
 * - `unknown`: a timeout or a connection error: it may or may not have taken
 *   effect, at any time after its invocation. Its completion is `Infinity`:
 *   it stays open until the end of the history.
 *
 * Lock histories have their own recorder shape and checker:
 * {@linkcode lockViolations} (re-exported here).
 *
 * @module
 */

export {
  lockViolations,
  type RecordedHold,
  recordHold,
} from "../../testing/lock_history.ts";

/** A pair as a client saw it: the value as text, the backend's version. */
export interface SeenPair {
  value: string;
  lastIndex: bigint;
}

/** One write of an `atomic()` group. */
export type AtomicWrite =
  | { type: "put"; key: string; value: string }
  | { type: "delete"; key: string };

/** What an operation asked for. */
export type KvInput =
  | { type: "get"; key: string }
  | { type: "put"; key: string; value: string }
  | { type: "delete"; key: string }
  /** `atomicPut(key, value, previous)`; `expected` is previous's lastIndex. */
  | { type: "cas"; key: string; value: string; expected: bigint | null }
  /** `atomicDelete(key, previous)`. */
  | { type: "casDelete"; key: string; expected: bigint }
  /** `atomic().check(...)...put/delete(...).commit()`. */
  | {
    type: "atomic";
    checks: { key: string; lastIndex: bigint | null }[];
    writes: AtomicWrite[];
  };

/** Why a failed operation surely did not apply. */
export type FailReason =
  /** `KeyModifiedError`: the key is there at another version. */
  | "modified"
  /** `KeyExistsError`: a create found the key. */
  | "exists"
  /** `KeyNotFoundError`: a CAS found no key. */
  | "notFound"
  /** `commit()` resolved `{ ok: false }`: some check failed. */
  | "checkFailed"
  /** Rejected before any effect (bad input): says nothing of the state. */
  | "invalid";

/** How an operation ended. */
export type KvOutcome =
  | {
    status: "ok";
    /** `get`: the pair read (`null`: absent). */
    read?: SeenPair | null;
    /** `put`, `cas`, `atomic`: the new `lastIndex` returned. */
    lastIndex?: bigint;
  }
  | { status: "failed"; reason: FailReason; error?: string }
  | { status: "unknown"; error: string };

/** One recorded operation. */
export interface KvOperation {
  /** Its position in the history. */
  id: number;
  /** Who ran it (one client runs one operation at a time). */
  client: string;
  input: KvInput;
  /** When it was invoked. */
  invokedAt: number;
  /** When it completed; `Infinity` when its outcome is unknown. */
  completedAt: number;
  outcome: KvOutcome;
}

/** The error's name: `error.name`, or the `Name:` a child process sent. */
function errorName(error: unknown): string {
  if (error instanceof Error && error.name !== "Error") return error.name;
  const text = error instanceof Error ? error.message : String(error);
  return /^([A-Za-z]+Error):/.exec(text)?.[1] ?? "Error";
}

/**
 * The outcome an error means: the CAS and validation errors of the contract
 * are definite failures; anything else (timeouts, aborts, connection errors,
 * a store that closed under the call) is unknown.
 */
export function outcomeOfError(error: unknown): KvOutcome {
  const name = errorName(error);
  const text = error instanceof Error ? error.message : String(error);
  const message = text.startsWith(`${name}:`) ? text : `${name}: ${text}`;
  switch (name) {
    case "KeyModifiedError":
      return { status: "failed", reason: "modified", error: message };
    case "KeyExistsError":
      return { status: "failed", reason: "exists", error: message };
    case "KeyNotFoundError":
      return { status: "failed", reason: "notFound", error: message };
    case "InvalidKeyError":
    case "InvalidArgumentError":
    case "ValueTooLargeError":
    case "PreviousNotSpecifiedError":
      return { status: "failed", reason: "invalid", error: message };
    default:
      return { status: "unknown", error: message };
  }
}

/** A clock for histories: `performance.now()`, or a logical one in tests. */
export type Clock = () => number;

/** Records operations as clients run them. */
export class HistoryRecorder {
  readonly #operations: KvOperation[] = [];
  readonly #clock: Clock;

  /** @param clock The clock of invocations and completions. */
  constructor(clock: Clock = () => performance.now()) {
    this.#clock = clock;
  }

  /** Every operation recorded so far, in invocation order. */
  get operations(): readonly KvOperation[] {
    return this.#operations;
  }

  /**
   * Runs `run` as `client`'s operation `input` and records it; resolves the
   * outcome (never rejects: an error becomes a failed or unknown outcome).
   */
  async record(
    client: string,
    input: KvInput,
    run: () => Promise<KvOutcome>,
  ): Promise<KvOutcome> {
    const operation: KvOperation = {
      id: this.#operations.length,
      client,
      input,
      invokedAt: this.#clock(),
      completedAt: Infinity,
      outcome: { status: "unknown", error: "never completed" },
    };
    this.#operations.push(operation);
    let outcome: KvOutcome;
    try {
      outcome = await run();
    } catch (error) {
      outcome = outcomeOfError(error);
    }
    operation.outcome = outcome;
    if (outcome.status !== "unknown") operation.completedAt = this.#clock();
    return outcome;
  }
}

/** A short description of an operation, for failure messages. */
export function describeOperation(operation: KvOperation): string {
  const show = (value: unknown) =>
    JSON.stringify(
      value,
      (_, v) => typeof v === "bigint" ? `${v}n` : v,
    );
  const end = operation.completedAt === Infinity
    ? "open"
    : operation.completedAt.toFixed(2);
  return `#${operation.id} ${operation.client} ${show(operation.input)} -> ${
    show(operation.outcome)
  } [${operation.invokedAt.toFixed(2)}, ${end}]`;
}
