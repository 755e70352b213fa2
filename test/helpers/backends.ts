/**
 * The backend registry as tests pass it to core (parseSpec, decodeNetworkConfig, Fleet,
 * validatePeerLease, leaseRows, planApply, ...): weft's own, src/backends/index.ts BACKENDS,
 * so that a test judges configs and leases exactly as `weft run` does.
 */
export { BACKENDS } from '../../src/backends/index.js';
