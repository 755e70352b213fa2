/** Time as a parameter: the agent passes the real clock, tests a fake. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}
