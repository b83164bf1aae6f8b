import type { ChatMessage } from '@lib/contracts';

interface SenderStream {
  /** The next sequence number the app should see. */
  next: number;
  held: Map<number, ChatMessage>;
  skipped: Set<number>;
}

/**
 * Hands a recipient's pubsub messages to the app in per-sender order: a message that arrives ahead of
 * a missing one is held back until the missing one arrives or is given up. A stream (sender, its
 * registration, the `to` it wrote to) starts at the first sequence the recipient's consumer pulls:
 * everything older was acked in an earlier session.
 */
export class OrderedInbox {
  private readonly streams = new Map<string, SenderStream>();

  constructor(private readonly deliver: (message: ChatMessage) => void) {}

  /** Registers a pulled message, in stream order, before any of its attempts arrives. */
  expect(message: ChatMessage): void {
    const key = streamKey(message);
    if (!this.streams.has(key))
      this.streams.set(key, { next: message.seq ?? 1, held: new Map(), skipped: new Set() });
  }

  /** A message arrived (its first arrival only). */
  offer(message: ChatMessage): void {
    const stream = this.streams.get(streamKey(message));
    const seq = message.seq ?? 0;
    if (!stream || seq < stream.next) {
      // late (redelivered after a recovery) or unordered: hand it over rather than hold it forever
      this.deliver(message);
      return;
    }
    stream.held.set(seq, message);
    this.drain(stream);
  }

  /** A message will never arrive: stop waiting for it. */
  giveUp(message: ChatMessage): void {
    const stream = this.streams.get(streamKey(message));
    const seq = message.seq ?? 0;
    if (!stream || seq < stream.next) return;
    stream.skipped.add(seq);
    this.drain(stream);
  }

  /** Messages held back behind a missing one, over every sender. */
  get heldBack(): number {
    let count = 0;
    for (const stream of this.streams.values()) count += stream.held.size;
    return count;
  }

  private drain(stream: SenderStream): void {
    for (;;) {
      const message = stream.held.get(stream.next);
      if (message) {
        stream.held.delete(stream.next);
        this.deliver(message);
      } else if (!stream.skipped.delete(stream.next)) {
        return;
      }
      stream.next += 1;
    }
  }
}

function streamKey(message: ChatMessage): string {
  return `${message.from}|${message.epoch ?? ''}|${message.to}`;
}
