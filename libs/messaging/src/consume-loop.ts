import { Logger } from '@nestjs/common';
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';

import { type Backoff, backoffDelay, sleep } from './backoff.js';

/**
 * How the loop treats a failed batch: `transient` is retried after a backoff; `poison` may be one bad
 * message (the batch is split to find it, and it is dead-lettered after `maxAttempts`); `reposition`
 * (strict mode) means the consumer's position is no longer right and must be rebuilt.
 */
export type Failure = 'transient' | 'poison' | 'reposition';

export interface ConsumeLoopOptions {
  /** Name for logs and metrics. */
  name: string;
  /** Obtains the consumer to read from; called at start and again after `reposition`. */
  consumer: () => Promise<Consumer>;
  /** Messages pulled and not yet acked, at most (besides the batch in hand): the bound on in-flight work. */
  maxInFlight: number;
  /** Messages handed to `handle` at once, at most. */
  maxBatch: number;
  /** The consumer's `ack_wait`: held messages get `working()` at a third of it. */
  ackWaitMs: number;
  /**
   * `strict`: messages are handled in delivery order and a failing batch is retried in place (never
   * nak'ed), so nothing overtakes it; a gap in the consumer's delivery sequence (a delivery lost in a
   * reconnect) calls `reposition` and restarts. `independent`: a failing message is nak'ed with a
   * backoff delay and others go on.
   */
  ordering: 'strict' | 'independent';
  backoff: Backoff;
  /** Attempts at a poison message (the same deterministic failure) before it is dead-lettered. */
  maxAttempts: number;
  /** Stores a batch; resolving means every message of it may be acked. */
  handle: (batch: JsMsg[]) => Promise<void>;
  /** Sorts an error of `handle` into a retry with backoff (`transient`) or a possible poison message. */
  classify: (error: unknown) => Failure;
  /**
   * Sets a poison message aside (e.g. publishes it to a dead-letter stream); the loop then terminates it.
   * Retried on failure; an error classified `reposition` rebuilds the consumer instead.
   */
  deadLetter: (message: JsMsg, error: unknown, attempts: number) => Promise<void>;
  /** Strict mode: makes the next `consumer()` start right after the last committed message. */
  reposition?: () => Promise<void>;
  /** Called after every batch with its outcome, for metrics. */
  observe?: (outcome: 'handled' | 'retried' | 'dead_lettered' | 'repositioned', messages: number) => void;
}

class RepositionNeeded extends Error {}

/** How long one pull request waits for messages before the next one is sent. */
const FETCH_EXPIRES_MS = 2_000;

/**
 * The one consume loop of the product: a durable pull consumer with explicit ack, bounded in-flight
 * messages, batches, `working()` while work is long, backoff on failure, poison isolation and
 * dead-lettering, and a drain on stop that finishes the batch in hand.
 */
export class ConsumeLoop {
  private readonly logger: Logger;
  private readonly stopping = new AbortController();
  private messages?: ConsumerMessages;
  private buffer: JsMsg[] = [];
  private wakeProcessor?: () => void;
  private wakeReader?: () => void;
  private lastDeliverySequence = 0;
  /** Set when the current run ends (failure, reposition or stop): its reader must not wait on. */
  private runEnded = false;
  private running?: Promise<void>;

  constructor(private readonly options: ConsumeLoopOptions) {
    this.logger = new Logger(`ConsumeLoop:${options.name}`);
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops pulling, finishes (and acks) the batch in hand, and leaves the rest for redelivery. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.messages?.stop();
    this.wakeProcessor?.();
    this.wakeReader?.();
    await this.running;
  }

  private async run(): Promise<void> {
    // strict mode starts from the position of record, not from wherever the consumer was left
    await this.repositionUntilDone();
    while (!this.stopping.signal.aborted) {
      try {
        await this.runOnce();
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        if (error instanceof RepositionNeeded) {
          this.logger.warn(`repositioning: ${error.message}`);
          this.options.observe?.('repositioned', 0);
        } else {
          this.logger.error(`consumer failed, restarting: ${String(error)}`);
          await sleep(backoffDelay(this.options.backoff, 3), this.stopping.signal);
        }
        await this.repositionUntilDone();
      }
    }
  }

  private async repositionUntilDone(): Promise<void> {
    if (this.options.ordering !== 'strict' || !this.options.reposition) return;
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.options.reposition();
        return;
      } catch (error) {
        this.logger.warn(`reposition failed (attempt ${attempt}): ${String(error)}`);
        await sleep(backoffDelay(this.options.backoff, attempt), this.stopping.signal);
      }
    }
  }

  private async runOnce(): Promise<void> {
    const consumer = await this.options.consumer();
    this.buffer = [];
    this.lastDeliverySequence = 0;
    this.runEnded = false;
    let readerFailure: unknown;
    const reader = this.read(consumer).catch((error: unknown) => {
      readerFailure = error;
      this.wakeProcessor?.();
    });
    try {
      // the batch in hand is always finished (committed and acked) before a restart or reposition
      await this.process(() => readerFailure !== undefined);
    } finally {
      this.runEnded = true;
      this.messages?.stop();
      this.wakeReader?.();
      await reader;
      this.releaseBuffer();
    }
    if (readerFailure !== undefined) {
      throw readerFailure instanceof Error
        ? readerFailure
        : new Error('the subscription failed', { cause: readerFailure });
    }
  }

  /**
   * Pulls into the buffer with `fetch` requests sized to the room left, so that every message pulled
   * is in the buffer (where `working()` reaches it) and never more than `maxInFlight` are held.
   */
  private async read(consumer: Consumer): Promise<void> {
    while (!this.stopping.signal.aborted && !this.runEnded) {
      const room = this.options.maxInFlight - this.buffer.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
        continue;
      }
      const messages = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS });
      this.messages = messages;
      if (this.stopping.signal.aborted || this.runEnded) messages.stop();
      for await (const message of messages) {
        if (this.options.ordering === 'strict') {
          const sequence = message.info.deliverySequence;
          if (this.lastDeliverySequence !== 0 && sequence !== this.lastDeliverySequence + 1) {
            throw new RepositionNeeded(`delivery ${sequence} follows ${this.lastDeliverySequence}`);
          }
          this.lastDeliverySequence = sequence;
        }
        this.buffer.push(message);
        this.wakeProcessor?.();
      }
    }
  }

  private async process(readerFailed: () => boolean): Promise<void> {
    while (!this.stopping.signal.aborted && !readerFailed()) {
      if (this.buffer.length === 0) {
        await new Promise<void>((resolve) => (this.wakeProcessor = resolve));
        continue;
      }
      const batch = this.buffer.splice(0, this.options.maxBatch);
      this.wakeReader?.();
      await this.handleBatch(batch);
    }
  }

  /**
   * Handles a batch until it is acked, dead-lettered or handed back. Resolves `false` when the loop
   * stopped first: in strict mode nothing after an unfinished message may be handled.
   */
  private async handleBatch(batch: JsMsg[]): Promise<boolean> {
    // an outage says nothing about the message: only poison failures count towards maxAttempts
    let poisonAttempts = 0;
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt(batch);
      if (failure === undefined) {
        for (const message of batch) message.ack();
        this.options.observe?.('handled', batch.length);
        return true;
      }
      if (failure.kind === 'reposition') throw new RepositionNeeded(String(failure.error));
      if (failure.kind === 'poison') {
        if (batch.length > 1) {
          // find the poison message: handle one message at a time, in order
          for (const message of batch) {
            if (!(await this.handleBatch([message]))) return false;
          }
          return true;
        }
        // independent mode hands the message back between attempts: the server counts them
        poisonAttempts += 1;
        const attempts =
          this.options.ordering === 'independent' ? batch[0].info.deliveryCount : poisonAttempts;
        if (attempts >= this.options.maxAttempts) return this.deadLetter(batch[0], failure.error, attempts);
      }
      this.options.observe?.('retried', batch.length);
      if (this.options.ordering === 'independent') {
        for (const message of batch) {
          message.nak(backoffDelay(this.options.backoff, message.info.deliveryCount));
        }
        return true;
      }
      this.logger.warn(
        `batch of ${batch.length} failed (${failure.kind}, attempt ${attempt}): ${String(failure.error)}`,
      );
      await this.holdFor(backoffDelay(this.options.backoff, attempt), batch);
      if (this.stopping.signal.aborted) return false; // unacked: redelivered to whoever consumes next
    }
  }

  private async attempt(batch: JsMsg[]): Promise<{ kind: Failure; error: unknown } | undefined> {
    const keepAlive = setInterval(() => this.touch(batch), Math.max(100, this.options.ackWaitMs / 3));
    try {
      await this.options.handle(batch);
      return undefined;
    } catch (error) {
      return { kind: this.options.classify(error), error };
    } finally {
      clearInterval(keepAlive);
    }
  }

  private async deadLetter(message: JsMsg, error: unknown, attempts: number): Promise<boolean> {
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.options.deadLetter(message, error, attempts);
        // a bare term: nats-server 2.9 ignores "+TERM <reason>" and would redeliver the message
        message.term();
        this.options.observe?.('dead_lettered', 1);
        return true;
      } catch (deadLetterError) {
        if (this.options.classify(deadLetterError) === 'reposition') {
          throw new RepositionNeeded(String(deadLetterError));
        }
        this.logger.error(`dead-lettering failed (attempt ${attempt}): ${String(deadLetterError)}`);
        await this.holdFor(backoffDelay(this.options.backoff, attempt), [message]);
      }
    }
    return false;
  }

  /** Waits `ms` while telling the server that the held messages (and the buffered ones) are still in work. */
  private async holdFor(ms: number, batch: JsMsg[]): Promise<void> {
    const keepAlive = setInterval(() => this.touch(batch), Math.max(100, this.options.ackWaitMs / 3));
    try {
      this.touch(batch);
      await sleep(ms, this.stopping.signal);
    } finally {
      clearInterval(keepAlive);
    }
  }

  private touch(batch: JsMsg[]): void {
    for (const message of batch) message.working();
    for (const message of this.buffer) message.working();
  }

  /** Messages pulled but not handled: independent mode hands them back at once; strict mode repositions. */
  private releaseBuffer(): void {
    if (this.options.ordering === 'independent') {
      for (const message of this.buffer) message.nak();
    }
    this.buffer = [];
  }
}
