/** Base of every error the engine throws on purpose. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A config field is out of range; `field` names it. */
export class ConfigError extends EngineError {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/**
 * Input data is unusable; row and column are 0-based, -1 when not about one
 * cell; `reason` says what is wrong with that cell ("value is NaN"), so a caller
 * that knows more (the partition, the row's offset) can word its own message.
 */
export class DataError extends EngineError {
  constructor(message: string, readonly row = -1, readonly column = -1, readonly reason = message) {
    super(message);
  }
}

/** A model snapshot cannot be read or does not fit what was asked. */
export class SnapshotError extends EngineError {}
