import type { ChatMetrics } from '@lib/contracts';

import type { ChatSession, GatewayApi } from './chat-session.js';
import type { Cell, CellResult } from './experiment-plan.js';

export interface CellRun {
  api: GatewayApi;
  sender: ChatSession;
  receiver: ChatSession;
  messages: number;
  window: number;
  seed: number;
  /** Called with the number of messages settled (delivered, lost or failed) so far. */
  progress?: (settled: number) => void;
  /** Set when the run is being interrupted: the cell stops waiting. */
  aborted?: () => boolean;
}

const POLL_MS = 100;
/** Time for the gateway to finish a cell beyond what its config implies (a loaded machine). */
const SLACK_MS = 30_000;

/**
 * Runs one cell: sets its config (with the run's seed, so the loss/latency draws restart from it),
 * zeroes the metrics, sends `messages` A→B with at most `window` unanswered sends, waits until every
 * message was delivered or given up (and late acks and retries are over), then reads the metrics.
 */
export async function runCell(cell: Cell, run: CellRun): Promise<CellResult> {
  const { api, sender, receiver } = run;
  await api.updateConfig({ ...cell.config, seed: run.seed });
  await api.resetMetrics();
  await until(
    async () => {
      const m = await api.metrics();
      return totalOf(m) === 0;
    },
    10_000,
    'the metrics reset',
    run.aborted,
  );
  const firstMessage = receiver.messages.length;
  const firstFailure = sender.failures.length;
  const accepted = new Set<string>();
  let refused = 0;
  let next = 0;
  const started = performance.now();
  let lastDelivery = started;
  const delivered = new Set<string>();
  const failed = new Set<string>();
  const settledCount = (): number => {
    let givenUp = 0;
    for (const id of failed) if (!delivered.has(id)) givenUp += 1;
    return delivered.size + givenUp;
  };
  let scannedMessages = firstMessage;
  let scannedFailures = firstFailure;
  const collect = (): void => {
    for (; scannedMessages < receiver.messages.length; scannedMessages++) {
      const m = receiver.messages[scannedMessages];
      if (m.from === sender.node && m.method === cell.method && !delivered.has(m.msg_id)) {
        delivered.add(m.msg_id);
        lastDelivery = receiver.receivedAt[scannedMessages];
      }
    }
    for (; scannedFailures < sender.failures.length; scannedFailures++)
      failed.add(sender.failures[scannedFailures].msg_id);
  };
  const worker = async (): Promise<void> => {
    while (next < run.messages && !run.aborted?.()) {
      const index = next++;
      const answer = await sender.send(receiver.node, cell.method, `${cell.experiment}-${index}`);
      if (answer.ok) accepted.add(answer.msg_id);
      else refused += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(run.window, run.messages) }, () => worker()));
  if (refused > 0) throw new Error(`${refused} of ${run.messages} send_message requests were refused`);

  const { max_retries, ack_timeout_ms, latency_max_ms } = cell.config;
  const attemptMs = ack_timeout_ms + latency_max_ms;
  const budget = (cell.method === 'pubsub' ? (max_retries + 1) * attemptMs : latency_max_ms) + SLACK_MS;
  await until(
    async () => {
      collect();
      run.progress?.(settledCount());
      if (cell.method === 'pubsub') return settledCount() >= accepted.size;
      const m = (await api.metrics()).direct;
      return m.delivered + m.lost >= m.sent && delivered.size >= m.delivered;
    },
    budget,
    `${cell.label} (${cell.method}): every message delivered or given up`,
    run.aborted,
  );
  // a delivered pubsub message may still be waiting for its ack, and a late ack means a retry and a
  // suppressed duplicate: read the metrics once they stopped moving for one attempt's time
  const metrics = await settledMetrics(api, cell.method === 'pubsub' ? attemptMs + 200 : 200, budget, run);
  collect();
  const m = metrics[cell.method];
  const elapsedMs = performance.now() - started;
  const spanMs = Math.max(1, lastDelivery - started);
  return {
    cell,
    sent: accepted.size,
    delivered: m.delivered,
    lost: m.lost,
    retries: m.retries,
    duplicates: m.duplicates,
    failed: m.failed,
    avgLatencyMs: m.avg_latency_ms,
    p50LatencyMs: m.p50_latency_ms,
    p99LatencyMs: m.p99_latency_ms,
    throughput: (delivered.size / spanMs) * 1_000,
    elapsedMs,
  };
}

function totalOf(m: ChatMetrics): number {
  let total = 0;
  for (const method of [m.direct, m.pubsub]) {
    total +=
      method.sent + method.delivered + method.lost + method.retries + method.duplicates + method.failed;
  }
  return total;
}

async function settledMetrics(
  api: GatewayApi,
  quietMs: number,
  budgetMs: number,
  run: CellRun,
): Promise<ChatMetrics> {
  let latest = await api.metrics();
  let quietSince = performance.now();
  const deadline = performance.now() + budgetMs;
  while (performance.now() - quietSince < quietMs && performance.now() < deadline && !run.aborted?.()) {
    await sleep(POLL_MS);
    const now = await api.metrics();
    if (totalOf(now) !== totalOf(latest)) quietSince = performance.now();
    latest = now;
  }
  return latest;
}

/** Polls `condition` until it holds; throws naming `description` after `timeoutMs`. */
async function until(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  description: string,
  aborted?: () => boolean,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (aborted?.()) throw new Error('interrupted');
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await sleep(POLL_MS);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
