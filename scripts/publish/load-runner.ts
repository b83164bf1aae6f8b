import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import type { IngestEvent } from '@lib/contracts';

import { type BatchTally, retryDelayMs } from './load.js';

export interface SendOptions {
  /** Publisher base URL, without the trailing slash. */
  url: string;
  concurrency: number;
  /** Retries of one batch answered 503 or 429; after that the batch counts as failed. */
  maxRetries: number;
  timeoutMs: number;
  /** Called right before a batch's first request is serialized (e.g. to stamp a send time). */
  beforeSend?: (batch: IngestEvent[]) => void;
  /** Called once per batch when its outcome is final. */
  onBatchDone?: (outcome: BatchOutcome) => void;
}

export interface BatchOutcome {
  events: number;
  result: 'accepted' | 'rejected' | 'failed';
  /** Status of the last answer; undefined when there was none (network error, timeout). */
  status?: number;
  attempts: number;
  error?: string;
}

export interface SendResult extends BatchTally {
  /** Milliseconds from sending each request answered 202 to its answer. */
  acceptedLatenciesMs: number[];
  /** `performance.now()` when the first request went out. */
  startedAt: number;
}

/**
 * Posts `batches` to `POST /publish` with `concurrency` requests in flight, in order. A 503 or 429
 * is retried after its Retry-After, at most `maxRetries` times, with the batch's `Idempotency-Key`,
 * so what a first attempt did persist is not published twice; any other non-202 answer is final. A
 * network error or timeout is final too and counts as failed.
 */
export async function sendBatches(batches: IngestEvent[][], options: SendOptions): Promise<SendResult> {
  const result: SendResult = {
    acceptedEvents: 0,
    acceptedBatches: 0,
    rejectedEvents: 0,
    rejectedBatches: 0,
    failedEvents: 0,
    failedBatches: 0,
    retries: 0,
    requests: 0,
    elapsedMs: 0,
    acceptedLatenciesMs: [],
    startedAt: performance.now(),
  };
  const endpoint = `${options.url}/publish`;
  let next = 0;

  const sendOne = async (batch: IngestEvent[]): Promise<BatchOutcome> => {
    options.beforeSend?.(batch);
    const body = JSON.stringify({ events: batch });
    const idempotencyKey = randomUUID();
    for (let attempt = 1; ; attempt++) {
      result.requests += 1;
      const sentAt = performance.now();
      let response: Response;
      let text: string;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
          body,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        text = await response.text();
      } catch (error) {
        return {
          events: batch.length,
          result: 'failed',
          attempts: attempt,
          error: describeFetchError(error),
        };
      }
      const status = response.status;
      if (status === 202) {
        result.acceptedLatenciesMs.push(performance.now() - sentAt);
        return { events: batch.length, result: 'accepted', status, attempts: attempt };
      }
      const error = `${status} ${text.slice(0, 500)}`;
      if (status === 503 || status === 429) {
        if (attempt > options.maxRetries) {
          return {
            events: batch.length,
            result: 'failed',
            status,
            attempts: attempt,
            error: `${error} (gave up)`,
          };
        }
        result.retries += 1;
        await sleep(retryDelayMs(response.headers.get('retry-after')));
        continue;
      }
      const final = status >= 400 && status < 500 ? 'rejected' : 'failed';
      return { events: batch.length, result: final, status, attempts: attempt, error };
    }
  };

  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++];
      const outcome = await sendOne(batch);
      switch (outcome.result) {
        case 'accepted':
          result.acceptedEvents += outcome.events;
          result.acceptedBatches += 1;
          break;
        case 'rejected':
          result.rejectedEvents += outcome.events;
          result.rejectedBatches += 1;
          break;
        case 'failed':
          result.failedEvents += outcome.events;
          result.failedBatches += 1;
          break;
      }
      if (outcome.error !== undefined) result.firstError ??= outcome.error;
      options.onBatchDone?.(outcome);
    }
  };

  await Promise.all(Array.from({ length: Math.min(options.concurrency, batches.length) }, worker));
  result.elapsedMs = performance.now() - result.startedAt;
  return result;
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'request timed out';
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}
