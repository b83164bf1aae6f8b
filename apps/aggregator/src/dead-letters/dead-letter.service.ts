import { Inject, Injectable, Logger } from '@nestjs/common';
import type { StoredMsg } from '@nats-io/jetstream';
import { APP_CONFIG } from '@lib/config';
import {
  Headers,
  type MessagingNames,
  messagingNames,
  NotFoundError,
  UnavailableError,
} from '@lib/contracts';
import { NatsClient } from '@lib/messaging';

import type { AggregatorConfig } from '../aggregator.env.js';

export interface DeadLetter {
  sequence: number;
  time: string;
  original_subject: string | null;
  original_sequence: number | null;
  reason: string | null;
  attempts: number | null;
  /** The message body as text (UTF-8 with replacement characters when it is not). */
  data: string;
}

/** Reads and replays the dead-letter stream (poison messages set aside by the ingestors). */
@Injectable()
export class DeadLetterService {
  private readonly logger = new Logger(DeadLetterService.name);
  private readonly names: MessagingNames;

  constructor(
    @Inject(APP_CONFIG) config: AggregatorConfig,
    @Inject(NatsClient) private readonly nats: NatsClient,
  ) {
    this.names = messagingNames(config.NATS_NAMESPACE);
  }

  /** Dead letters from sequence `after + 1` on, oldest first, at most `limit`. */
  async list(
    after: number,
    limit: number,
  ): Promise<{ dead_letters: DeadLetter[]; total: number; next_after: number | null }> {
    const info = await this.guard(() => this.nats.jsm.streams.info(this.names.deadLetterStream));
    const letters: DeadLetter[] = [];
    let sequence = Math.max(after + 1, info.state.first_seq);
    while (letters.length < limit && sequence <= info.state.last_seq && info.state.messages > 0) {
      const message = await this.find(sequence);
      if (message) letters.push(toDeadLetter(message));
      sequence++;
    }
    const more = sequence <= info.state.last_seq && letters.length === limit;
    return { dead_letters: letters, total: info.state.messages, next_after: more ? sequence - 1 : null };
  }

  /**
   * Publishes a dead letter back to the subject it came from (deduplicated per dead letter, so a retried
   * replay is not ingested twice), then removes it from the dead-letter stream.
   */
  async replay(sequence: number): Promise<{ replayed: number; subject: string; new_sequence: number }> {
    const message = await this.find(sequence);
    const subject = message?.header?.get(Headers.OriginalSubject);
    if (!message || !subject) throw new NotFoundError(`no dead letter ${sequence}`);
    const ack = await this.guard(() =>
      this.nats.js.publish(subject, message.data, {
        msgID: `replay:${this.names.deadLetterStream}:${sequence}`,
      }),
    );
    await this.guard(() => this.nats.jsm.streams.deleteMessage(this.names.deadLetterStream, sequence));
    this.logger.log(`dead letter ${sequence} replayed to ${subject} as ${ack.seq}`);
    return { replayed: sequence, subject, new_sequence: ack.seq };
  }

  /** The dead letter at `sequence`, or undefined when there is none (deleted, or never there). */
  private find(sequence: number): Promise<StoredMsg | undefined> {
    return this.guard(() =>
      this.nats.jsm.streams.getMessage(this.names.deadLetterStream, { seq: sequence }),
    ).then(
      (message) => message ?? undefined,
      (error: unknown) => {
        if (error instanceof UnavailableError) throw error;
        return undefined;
      },
    );
  }

  private async guard<T>(call: () => Promise<T>): Promise<T> {
    if (!this.nats.isConnected) throw new UnavailableError('NATS is unreachable', 2);
    try {
      return await call();
    } catch (error) {
      if (/no message found|not found/i.test(String(error))) throw new NotFoundError(String(error));
      throw error;
    }
  }
}

function toDeadLetter(message: StoredMsg): DeadLetter {
  const header = (name: string): string | null => message.header?.get(name) || null;
  const number = (name: string): number | null => (header(name) === null ? null : Number(header(name)));
  return {
    sequence: message.seq,
    time: message.time.toISOString(),
    original_subject: header(Headers.OriginalSubject),
    original_sequence: number(Headers.OriginalSequence),
    reason: header(Headers.Reason),
    attempts: number(Headers.Attempts),
    data: new TextDecoder().decode(message.data),
  };
}
