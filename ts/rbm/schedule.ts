import { ConfigError } from './errors.js';

/**
 * A value that may change with the epoch: a constant, or steps
 * `[[0, 0.5], [5, 0.9]]` (0.5 from epoch 0, 0.9 from epoch 5 on).
 */
export type Schedule = number | [epoch: number, value: number][];

export function scheduleAt(s: Schedule, epoch: number): number {
  if (typeof s === 'number') return s;
  let v = s[0][1];
  for (const [e, x] of s) if (epoch >= e) v = x;
  return v;
}

export function validateSchedule(field: string, s: Schedule, min: number, max: number): void {
  const check = (v: number, where: string) => {
    if (!Number.isFinite(v) || v < min || v > max) throw new ConfigError(field, `${where} must be in [${min}, ${max}], got ${v}`);
  };
  if (typeof s === 'number') return check(s, 'value');
  if (!Array.isArray(s) || s.length === 0) throw new ConfigError(field, 'must be a number or a non-empty list of [epoch, value]');
  if (s[0][0] !== 0) throw new ConfigError(field, `the first step must start at epoch 0, got ${s[0][0]}`);
  s.forEach(([e, v], i) => {
    if (!Number.isInteger(e) || e < 0) throw new ConfigError(field, `step ${i}: epoch must be a non-negative integer, got ${e}`);
    if (i > 0 && e <= s[i - 1][0]) throw new ConfigError(field, `step ${i}: epochs must increase`);
    check(v, `step ${i} value`);
  });
}
