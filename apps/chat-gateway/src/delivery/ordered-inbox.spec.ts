import { describe, expect, it } from '@jest/globals';
import type { ChatMessage } from '@lib/contracts';

import { OrderedInbox } from './ordered-inbox.js';

const message = (seq: number): ChatMessage => ({
  msg_id: `m${seq}`,
  from: 'A',
  to: 'B',
  method: 'pubsub',
  content: `#${seq}`,
  sent_at: 0,
  seq,
  epoch: 'e1',
});

describe(OrderedInbox.name, () => {
  it('holds back a message that overtook a missing one until the missing one arrives', () => {
    const seen: number[] = [];
    const inbox = new OrderedInbox((m) => seen.push(m.seq!));
    [1, 2, 3].forEach((seq) => inbox.expect(message(seq)));
    inbox.offer(message(2));
    inbox.offer(message(3));
    expect(seen).toEqual([]);
    expect(inbox.heldBack).toBe(2);
    inbox.offer(message(1));
    expect(seen).toEqual([1, 2, 3]);
  });

  it('stops waiting for a message that was given up', () => {
    const seen: number[] = [];
    const inbox = new OrderedInbox((m) => seen.push(m.seq!));
    [4, 5, 6].forEach((seq) => inbox.expect(message(seq)));
    inbox.offer(message(6));
    inbox.giveUp(message(4));
    expect(seen).toEqual([]);
    inbox.offer(message(5));
    expect(seen).toEqual([5, 6]);
  });
});
