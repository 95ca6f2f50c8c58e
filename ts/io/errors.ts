import { EngineError } from '../rbm/errors.js';

/** Bytes received (Arrow, a snapshot) cannot be decoded or do not fit the call. */
export class PayloadError extends EngineError {}
