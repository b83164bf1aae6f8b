import { afterEach, describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';

import { waitFor } from '@lib/testing';

import { type ProcessSpec, Supervisor, type SupervisorOptions } from './supervisor.js';

// each case spawns a few node processes, slow on a busy machine
const CASE_TIMEOUT_MS = 20_000;

function nodeScript(name: string, source: string): ProcessSpec {
  return { name, command: process.execPath, args: ['-e', source], env: { PATH: process.env.PATH ?? '' } };
}

describe(Supervisor.name, () => {
  let supervisor: Supervisor | undefined;
  const notices: string[] = [];
  const lines: string[] = [];

  function makeSupervisor(options: Partial<SupervisorOptions> = {}): Supervisor {
    supervisor = new Supervisor({
      output: (source, stream, line) => lines.push(`${source} ${stream} ${line}`),
      notice: (message) => notices.push(message),
      initialBackoffMs: 100,
      maxBackoffMs: 400,
      ...options,
    });
    return supervisor;
  }

  afterEach(async () => {
    await supervisor?.stop();
    supervisor = undefined;
    notices.length = 0;
    lines.length = 0;
  }, CASE_TIMEOUT_MS);

  it(
    'restarts a crashing child, doubling the delay up to the maximum',
    async () => {
      const subject = makeSupervisor();
      subject.start(nodeScript('crasher', 'process.exit(3)'));

      await waitFor(() => subject.restarts('crasher') >= 4, { timeoutMs: 10_000, description: '4 restarts' });

      expect(notices.slice(0, 4)).toEqual([
        expect.stringMatching(/^crasher exited with code 3 after .* restarting in 0\.1 s$/),
        expect.stringMatching(/restarting in 0\.2 s$/),
        expect.stringMatching(/restarting in 0\.4 s$/),
        expect.stringMatching(/restarting in 0\.4 s$/),
      ]);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'starts the backoff over for a child that ran longer than resetAfterMs',
    async () => {
      const subject = makeSupervisor({ resetAfterMs: 200 });
      subject.start(nodeScript('slow-crasher', 'setTimeout(() => process.exit(1), 300)'));

      await waitFor(() => subject.restarts('slow-crasher') >= 2, {
        timeoutMs: 10_000,
        description: '2 restarts',
      });

      expect(notices.slice(0, 2)).toEqual([
        expect.stringMatching(/restarting in 0\.1 s$/),
        expect.stringMatching(/restarting in 0\.1 s$/),
      ]);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'never restarts a child after stop, even one waiting for its restart',
    async () => {
      const subject = makeSupervisor({ initialBackoffMs: 200 });
      subject.start(nodeScript('crasher', 'process.exit(1)'));
      subject.start(nodeScript('sleeper', 'setInterval(() => {}, 1000)'));
      await waitFor(() => notices.length === 1 && subject.isRunning('sleeper'), {
        description: 'crash and sleeper up',
      });

      await subject.stop();
      // longer than the pending restart delay: an absence cannot be waited for as a condition
      await delay(400);

      expect(subject.isRunning('sleeper')).toBe(false);
      expect(subject.isRunning('crasher')).toBe(false);
      expect(subject.restarts('crasher')).toBe(0);
      expect(notices).toHaveLength(1);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'kills a child that ignores SIGTERM once stopTimeoutMs has passed',
    async () => {
      const subject = makeSupervisor({ stopTimeoutMs: 300 });
      subject.start(
        nodeScript(
          'stubborn',
          `process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)`,
        ),
      );
      await waitFor(() => lines.includes('stubborn stdout ready'), { description: 'child ready' });

      await subject.stop();

      expect(subject.isRunning('stubborn')).toBe(false);
      expect(notices).toEqual(['stubborn did not stop within 0.3 s: killed']);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    "hands every line a child writes to the output, under the child's name and stream",
    async () => {
      const subject = makeSupervisor();
      subject.start(
        nodeScript(
          'talker',
          `process.stdout.write('{"msg":"one"}\\ntwo\\n'); process.stderr.write('oops\\n'); setInterval(() => {}, 1000)`,
        ),
      );

      await waitFor(() => lines.length === 3, { description: '3 lines' });

      expect(lines.sort()).toEqual(
        ['talker stderr oops', 'talker stdout two', 'talker stdout {"msg":"one"}'].sort(),
      );
    },
    CASE_TIMEOUT_MS,
  );
});
