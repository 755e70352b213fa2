/**
 * weft's error types. Every error has a stable `code` (callers branch on it, never on
 * messages) and an exit status: 2 for invalid input, 1 for runtime failures. Adapters convert
 * foreign errors into these once, at the boundary, and say whether a retry can help.
 */

export type ErrorCode =
  | 'E_SPEC' // the spec file (or an override) is invalid
  | 'E_USAGE' // bad command-line usage
  | 'E_CONFIG' // the network config JSON is invalid
  | 'E_REFUSED' // a request that would do harm (e.g. strand live leases) without --force
  | 'E_ETCD_UNAVAILABLE' // etcd cannot be reached or did not answer in time
  | 'E_ETCD_AUTH' // authentication or permission failure
  | 'E_ETCD_TOO_LARGE' // an answer from etcd over the gRPC receive limit (a listing splits its page)
  | 'E_ETCD_COMPACTED' // the revision asked for was compacted (a paged listing starts over)
  | 'E_ETCD' // any other etcd failure
  | 'E_CONFLICT' // a compare-and-swap lost
  | 'E_OUT_OF_SUBNETS' // no free subnet in the network
  | 'E_NOT_FOUND' // something expected is absent
  | 'E_HOST' // the host lacks something weft needs (interface, binary, ...)
  | 'E_KERNEL' // the kernel refused a change
  | 'E_IO' // a file could not be read or written
  | 'E_DAEMON' // the running weft daemon did not answer
  | 'E_ABORTED'; // weft is stopping: the work was not started or was cut short

/** Where in a file an error is. Lines and columns count from 1. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export class WeftError extends Error {
  override readonly name: string = 'WeftError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: { readonly retryable?: boolean; readonly cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }

  get retryable(): boolean {
    return this.options.retryable ?? false;
  }

  /** 2 for bad input the user can fix by editing what they typed, 1 for everything else. */
  get exitStatus(): 1 | 2 {
    return this.code === 'E_SPEC' || this.code === 'E_USAGE' || this.code === 'E_CONFIG' || this.code === 'E_REFUSED'
      ? 2
      : 1;
  }
}

/** One problem in a spec, with its position when there is one. */
export interface SpecProblem {
  readonly position?: SourcePosition;
  /** The dotted key path, e.g. `network.backend.vni`. */
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: SpecProblem): string {
  const where = p.position ? `${p.position.file}:${p.position.line}:${p.position.col}: ` : '';
  return `${where}${p.message}`;
}

/** A spec with one or more problems; `message` is the first, one line, positioned. */
export class SpecError extends WeftError {
  override readonly name = 'SpecError';
  constructor(readonly problems: readonly SpecProblem[]) {
    super('E_SPEC', problems.length > 0 && problems[0] ? formatProblem(problems[0]) : 'invalid spec');
  }
}

export function isWeftError(e: unknown): e is WeftError {
  return e instanceof WeftError;
}
