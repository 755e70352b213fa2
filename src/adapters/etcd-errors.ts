/**
 * etcd3 / gRPC / socket failures mapped once into weft's typed errors, by error class, gRPC
 * status code or system error code, never by message text: a client upgrade that rewords a
 * message must not turn a retryable outage into a fatal error. An ordered list of rules; the
 * first that matches decides. Anything unrecognised is E_ETCD, not retryable (a bug or a
 * refusal that a retry cannot fix).
 */
import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCAbortedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { type ErrorCode, WeftError } from '../core/base/errors.js';

/** gRPC status codes (grpc.github.io/grpc/core/md_doc_statuscodes.html) of raw, uncast errors. */
const GRPC = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
const TRANSIENT_GRPC = new Set<number>([GRPC.CANCELLED, GRPC.DEADLINE_EXCEEDED, GRPC.ABORTED, GRPC.UNAVAILABLE]);
/** Socket and resolver failures: the member is down, restarting or unreachable. */
const TRANSIENT_SYSCALL = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

type Ctor = abstract new (...args: never[]) => Error;
const isA =
  (...ctors: Ctor[]) =>
  (e: unknown): boolean =>
    ctors.some((c) => e instanceof c);
const grpcCode = (e: unknown): number | undefined => {
  const c: unknown = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'number' ? c : undefined;
};
const sysCode = (e: unknown): string | undefined => {
  const c: unknown = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
};

interface Rule {
  readonly match: (e: unknown) => boolean;
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly say: (what: string, first: string) => string;
}

const RULES: readonly Rule[] = [
  {
    match: isA(EtcdAuthenticationFailedError),
    code: 'E_ETCD_AUTH',
    retryable: false,
    say: (w) => `etcd ${w}: authentication failed (check etcd.username and etcd.passwordFile)`,
  },
  {
    match: (e) =>
      isA(EtcdPermissionDeniedError, GRPCUnauthenticatedError)(e) ||
      grpcCode(e) === GRPC.PERMISSION_DENIED ||
      grpcCode(e) === GRPC.UNAUTHENTICATED,
    code: 'E_ETCD_AUTH',
    retryable: false,
    say: (w) => `etcd ${w}: permission denied`,
  },
  // The client logs in again with the next call.
  { match: isA(EtcdInvalidAuthTokenError), code: 'E_ETCD', retryable: true, say: (w, m) => `etcd ${w}: ${m}` },
  { match: isA(EtcdLeaseInvalidError), code: 'E_NOT_FOUND', retryable: false, say: (w, m) => `etcd ${w}: ${m}` },
  // grpc-js refuses a message over grpc.max_receive_message_length with RESOURCE_EXHAUSTED (etcd
  // uses it for "too many requests" too, on writes: a retry later helps both).
  {
    match: (e) => isA(GRPCResourceExhastedError)(e) || grpcCode(e) === GRPC.RESOURCE_EXHAUSTED,
    code: 'E_ETCD_TOO_LARGE',
    retryable: true,
    say: (w, m) => `etcd ${w}: answer too large or etcd too busy (${m})`,
  },
  // etcd's only OUT_OF_RANGE for a read at a revision it handed out: that revision was compacted.
  {
    match: (e) => isA(GRPCOutOfRangeError)(e) || grpcCode(e) === GRPC.OUT_OF_RANGE,
    code: 'E_ETCD_COMPACTED',
    retryable: true,
    say: (w, m) => `etcd ${w}: revision compacted (${m})`,
  },
  {
    match: (e) =>
      isA(
        GRPCUnavailableError,
        GRPCDeadlineExceededError,
        GRPCResourceExhastedError,
        GRPCAbortedError,
        GRPCCancelledError,
        BrokenCircuitError,
        TaskCancelledError,
        ClientClosedError,
      )(e) ||
      TRANSIENT_GRPC.has(grpcCode(e) ?? -1) ||
      TRANSIENT_SYSCALL.has(sysCode(e) ?? '') ||
      isRecoverableError(e as Error),
    code: 'E_ETCD_UNAVAILABLE',
    retryable: true,
    say: (w, m) => `etcd ${w}: unreachable or not answering (${m})`,
  },
];

/** Map any error from etcd3/grpc to a WeftError, once. */
export function mapEtcdError(e: unknown, what: string): WeftError {
  if (e instanceof WeftError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const first = msg.split('\n')[0] ?? msg;
  const rule = RULES.find((r) => r.match(e));
  if (!rule) return new WeftError('E_ETCD', `etcd ${what}: ${first}`, { cause: e });
  return new WeftError(rule.code, rule.say(what, first), { cause: e, retryable: rule.retryable });
}
