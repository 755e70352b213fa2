// etcd failures are classified by error class, gRPC status code or socket error code, never by
// message text: a reworded message keeps its classification, and a message that merely sounds
// transient does not make an unknown error retryable.
import test from 'ava';
import { BrokenCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  castGrpcError,
} from 'etcd3';
import { type ErrorCode, WeftError } from '../../src/core/base/errors.js';
import { mapEtcdError } from '../../src/adapters/etcd-errors.js';

const grpcRaw = (code: number, message: string): Error => Object.assign(new Error(message), { code, details: message });
const sys = (code: string): Error => Object.assign(new Error(`connect ${code} 127.0.0.1:2379`), { code });

const cases: [string, unknown, ErrorCode, boolean][] = [
  ['unavailable (class), reworded', new GRPCUnavailableError('the member went for a walk'), 'E_ETCD_UNAVAILABLE', true],
  ['deadline (class), reworded', new GRPCDeadlineExceededError('took too long, sorry'), 'E_ETCD_UNAVAILABLE', true],
  ['raw gRPC status 14, any text', grpcRaw(14, 'zzz'), 'E_ETCD_UNAVAILABLE', true],
  ['raw gRPC status 4', grpcRaw(4, 'zzz'), 'E_ETCD_UNAVAILABLE', true],
  [
    'etcd3 cast of "no leader" (status 14)',
    castGrpcError(grpcRaw(14, 'etcdserver: no leader')),
    'E_ETCD_UNAVAILABLE',
    true,
  ],
  ['socket refused', sys('ECONNREFUSED'), 'E_ETCD_UNAVAILABLE', true],
  ['resolver', sys('EAI_AGAIN'), 'E_ETCD_UNAVAILABLE', true],
  ['circuit open', new BrokenCircuitError(), 'E_ETCD_UNAVAILABLE', true],
  ['client replaced while a call was pending', new ClientClosedError('x'), 'E_ETCD_UNAVAILABLE', true],
  ['wrong password', new EtcdAuthenticationFailedError('whatever'), 'E_ETCD_AUTH', false],
  ['permission denied (class)', new EtcdPermissionDeniedError('whatever'), 'E_ETCD_AUTH', false],
  ['raw gRPC status 16', grpcRaw(16, 'zzz'), 'E_ETCD_AUTH', false],
  ['expired auth token: the client logs in again', new EtcdInvalidAuthTokenError('x'), 'E_ETCD', true],
  ['lease gone', new EtcdLeaseInvalidError('42'), 'E_NOT_FOUND', false],
  ['a plain error that only SOUNDS transient', new Error('deadline exceeded: unavailable, timed out'), 'E_ETCD', false],
  ['raw gRPC status 3 (invalid argument)', grpcRaw(3, 'unavailable'), 'E_ETCD', false],
  // A listing halves its page on this; it must not look like an unreachable member.
  [
    "an answer over the receive limit (raw status 8, grpc-js's own)",
    grpcRaw(8, 'Received message larger than max (4200000 vs 4194304)'),
    'E_ETCD_TOO_LARGE',
    true,
  ],
  ['etcd3 cast of status 8', castGrpcError(grpcRaw(8, 'zzz')), 'E_ETCD_TOO_LARGE', true],
  // A paged listing starts over on this.
  [
    'a compacted revision (raw status 11)',
    grpcRaw(11, 'etcdserver: mvcc: required revision has been compacted'),
    'E_ETCD_COMPACTED',
    true,
  ],
];

for (const [name, e, code, retryable] of cases) {
  test(`etcd error: ${name} -> ${code}${retryable ? ' (retryable)' : ''}`, (t) => {
    const w = mapEtcdError(e, 'get');
    t.true(w instanceof WeftError);
    t.is(w.code, code);
    t.is(w.retryable, retryable);
    t.is(w.cause, e, 'the original error is kept as the cause');
  });
}

test('a WeftError passes through unchanged', (t) => {
  const w = new WeftError('E_ETCD_UNAVAILABLE', 'ours', { retryable: true });
  t.is(mapEtcdError(w, 'get'), w);
});
