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
  /** Messages pulled ahead of processing, at most: the bound on in-flight work. */
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
  /** Sets a poison message aside (e.g. publishes it to a dead-letter stream); the loop then terminates it. */
  deadLetter: (message: JsMsg, error: unknown, attempts: number) => Promise<void>;
  /** Strict mode: makes the next `consumer()` start right after the last committed message. */
  reposition?: () => Promise<void>;
  /** Called after every batch with its outcome, for metrics. */
  observe?: (outcome: 'handled' | 'retried' | 'dead_lettered' | 'repositioned', messages: number) => void;
}

class RepositionNeeded extends Error {}

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
    const messages = await consumer.consume({ max_messages: this.options.maxInFlight, expires: 5_000 });
    this.messages = messages;
    if (this.stopping.signal.aborted) messages.stop();
    let readerFailure: unknown;
    const reader = this.read(messages).catch((error: unknown) => {
      readerFailure = error;
      this.wakeProcessor?.();
    });
    try {
      // the batch in hand is always finished (committed and acked) before a restart or reposition
      await this.process(() => readerFailure !== undefined);
    } finally {
      messages.stop();
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

  /** Moves messages from the subscription into the buffer, never holding more than `maxInFlight`. */
  private async read(messages: ConsumerMessages): Promise<void> {
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
      while (this.buffer.length >= this.options.maxInFlight && !this.stopping.signal.aborted) {
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    }
    if (!this.stopping.signal.aborted) throw new Error('subscription ended');
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

  private async handleBatch(batch: JsMsg[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt(batch);
      if (failure === undefined) {
        for (const message of batch) message.ack();
        this.options.observe?.('handled', batch.length);
        return;
      }
      if (failure.kind === 'reposition') throw new RepositionNeeded(String(failure.error));
      if (failure.kind === 'poison') {
        if (batch.length > 1) {
          // find the poison message: handle one message at a time, in order
          for (const message of batch) await this.handleBatch([message]);
          return;
        }
        if (attempt >= this.options.maxAttempts) {
          await this.deadLetter(batch[0], failure.error, attempt);
          return;
        }
      }
      this.options.observe?.('retried', batch.length);
      if (this.options.ordering === 'independent') {
        for (const message of batch) {
          message.nak(backoffDelay(this.options.backoff, message.info.deliveryCount));
        }
        return;
      }
      this.logger.warn(
        `batch of ${batch.length} failed (${failure.kind}, attempt ${attempt}): ${String(failure.error)}`,
      );
      await this.holdFor(backoffDelay(this.options.backoff, attempt), batch);
      if (this.stopping.signal.aborted) return; // unacked: redelivered to whoever consumes next
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

  private async deadLetter(message: JsMsg, error: unknown, attempts: number): Promise<void> {
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.options.deadLetter(message, error, attempts);
        message.term(String(error).slice(0, 200));
        this.options.observe?.('dead_lettered', 1);
        return;
      } catch (deadLetterError) {
        this.logger.error(`dead-lettering failed (attempt ${attempt}): ${String(deadLetterError)}`);
        await this.holdFor(backoffDelay(this.options.backoff, attempt), [message]);
      }
    }
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
