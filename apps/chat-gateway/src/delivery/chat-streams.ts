import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { chatNames } from '@lib/contracts';
import type { StreamDeclaration } from '@lib/messaging';

/**
 * The pubsub stream: one subject per recipient node (`<ns>.chat.inbox.<node>`), work-queue retention
 * (a message leaves once its recipient acked it, so a node that is away finds its messages when it
 * comes back), `discard: new` so a full stream refuses a send instead of dropping stored messages.
 */
export function chatStreamDeclarations(settings: {
  NATS_NAMESPACE: string;
  CHAT_STREAM_MAX_BYTES: number;
  CHAT_STREAM_REPLICAS: number;
}): StreamDeclaration[] {
  const names = chatNames(settings.NATS_NAMESPACE);
  return [
    {
      name: names.stream,
      subjects: [names.inboxSubjects],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_bytes: settings.CHAT_STREAM_MAX_BYTES,
      num_replicas: settings.CHAT_STREAM_REPLICAS,
      duplicate_window: 120 * 1_000_000_000,
    },
  ];
}
