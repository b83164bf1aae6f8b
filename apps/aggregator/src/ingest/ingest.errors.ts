/** A message of the events stream that cannot be decoded into valid events: retrying cannot help. */
export class UndecodableMessageError extends Error {
  constructor(
    readonly streamSequence: number,
    reason: string,
  ) {
    super(`message ${streamSequence} cannot be decoded: ${reason}`);
    this.name = 'UndecodableMessageError';
  }
}
