import { engineSpec } from '../gen/engine-spec.js';
import { ConfigError } from './errors.js';
import { type Schedule, validateSchedule } from './schedule.js';

/**
 * The engine's options: defaults and ranges come from proto/engine.proto's `(sparkdbn.v1.spec)` field
 * options (generated into ts/gen/engine-spec.ts), which the JVM reads too; this module only applies them.
 */
export interface OptionSpec {
  /** The proto field's name (snake_case), for the contract's own terms. */
  field: string;
  kind: 'integer' | 'real' | 'flag' | 'schedule';
  default?: number;
  defaultSchedule?: readonly (readonly [number, number])[];
  min?: number;
  max?: number;
  minOpen?: boolean;
  maxOpen?: boolean;
}

export type SpecMessage = keyof typeof engineSpec;

/** The specs of one message's options, by the engine's (camelCase) name. */
export function optionSpecs(message: SpecMessage): Readonly<Record<string, OptionSpec>> {
  return engineSpec[message] as unknown as Record<string, OptionSpec>;
}

/** "[0, 1)", "(0, 100]": the range as a message says it. */
export function rangeText(s: OptionSpec): string {
  return `${s.minOpen ? '(' : '['}${s.min}, ${s.max}${s.maxOpen ? ')' : ']'}`;
}

function inRange(s: OptionSpec, v: number): boolean {
  if (s.min === undefined || s.max === undefined) return true;
  return (s.minOpen ? v > s.min : v >= s.min) && (s.maxOpen ? v < s.max : v <= s.max);
}

/** The default of an option: a number, a flag or a schedule. */
export function optionDefault(s: OptionSpec): number | boolean | Schedule {
  if (s.kind === 'schedule') {
    const steps = (s.defaultSchedule ?? []).map(([e, v]) => [e, v] as [number, number]);
    return steps.length === 1 ? steps[0][1] : steps;
  }
  if (s.default === undefined) throw new ConfigError(s.field, 'has no default in proto/engine.proto');
  return s.kind === 'flag' ? s.default !== 0 : s.default;
}

/** Every option of a message at its default. */
export function defaultsOf<T>(message: SpecMessage): T {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(optionSpecs(message))) out[name] = optionDefault(s);
  return out as T;
}

/** Checks one value against its option's spec; throws ConfigError naming the option. */
export function checkOption(name: string, s: OptionSpec, v: unknown): void {
  switch (s.kind) {
    case 'flag':
      if (typeof v !== 'boolean') throw new ConfigError(name, 'must be true or false');
      return;
    case 'schedule':
      validateSchedule(name, v as Schedule, s.min ?? -Infinity, s.max ?? Infinity);
      return;
    case 'integer':
      if (s.min === undefined) {
        if (!Number.isSafeInteger(v)) throw new ConfigError(name, `must be a safe integer, got ${v}`);
      } else if (!Number.isInteger(v) || !inRange(s, v as number)) {
        throw new ConfigError(name, `must be an integer in ${rangeText(s)}, got ${v}`);
      }
      return;
    case 'real':
      if (typeof v !== 'number' || !Number.isFinite(v) || !inRange(s, v)) {
        throw new ConfigError(name, `must be in ${rangeText(s)}, got ${v}`);
      }
  }
}

/**
 * A message's options with the defaults filled in and every value checked; an unknown option is refused
 * (`what`: "a training option"). The answer has the spec's key order, so equal configs have equal JSON.
 */
export function withDefaults<T>(message: SpecMessage, given: object, what: string): T {
  const specs = optionSpecs(message);
  const unknown = Object.keys(given).filter((k) => !(k in specs));
  if (unknown.length > 0) throw new ConfigError(unknown[0], `is not ${what}`);
  const g = given as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(specs)) {
    const v = g[name] === undefined ? optionDefault(s) : g[name];
    checkOption(name, s, v);
    out[name] = v;
  }
  return out as T;
}
