import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { makeEvent, PipelineFixture } from '@lib/testing';

/** The optional API key, on a real publisher and aggregator: writes need it, reads and probes do not. */
describe('API key on write endpoints', () => {
  let pipeline: PipelineFixture;
  const key = 'test-key-0123456789';

  beforeAll(async () => {
    pipeline = await PipelineFixture.start({ API_KEY: key }, 'apikey');
  });

  afterAll(async () => {
    await pipeline.dispose();
  });

  function publish(headers: Record<string, string>): Promise<Response> {
    return fetch(`${pipeline.publisher.url}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(makeEvent({ topic: 'auth.t' })),
    });
  }

  it('refuses a write without the key with 401 in the product error format, publishing nothing', async () => {
    const response = await publish({});
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ statusCode: 401, error: 'UNAUTHORIZED' });
    const wrong = await publish({ 'x-api-key': 'not-the-key' });
    expect(wrong.status).toBe(401);
    expect((await pipeline.stats(pipeline.publisher)).received).toBe(0);
  });

  it('accepts the key in x-api-key or as a bearer token', async () => {
    expect((await publish({ 'x-api-key': key })).status).toBe(202);
    expect((await publish({ authorization: `Bearer ${key}` })).status).toBe(202);
    await pipeline.waitForReceived(2);
  });

  it('guards the aggregator’s writes too, and leaves reads and probes open', async () => {
    const replay = await fetch(`${pipeline.aggregator.url}/dead-letters/1/replay`, { method: 'POST' });
    expect(replay.status).toBe(401);
    for (const path of ['/health', '/health/live', '/metrics', '/stats', '/events?topic=auth.t']) {
      expect((await fetch(`${pipeline.aggregator.url}${path}`)).status).toBe(200);
    }
  });
});
