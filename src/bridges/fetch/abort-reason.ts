import { AbortError } from '../../errors.js';

/** The error an aborted signal stands for: its reason when that is an Error, else a plain AbortError. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new AbortError();
}
