import { cacheSubjects, chatNames, lockSubjects, messagingNames, queueNames } from '@lib/contracts';

import type { ServiceName } from '@lib/testing';

/** What one NATS user may publish and subscribe to. */
export interface SubjectPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer the requests it received (on their reply subjects) and nothing else there. */
  allowResponses: boolean;
}

/** The JetStream API of one stream, by what a service does with it. */
const jetStream = {
  /** Declares the stream at start-up (create or update) and reads its info. */
  declare: (stream: string): string[] => [
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.UPDATE.${stream}`,
    `$JS.API.STREAM.INFO.${stream}`,
  ],
  /** Reads single messages by sequence or subject. */
  read: (stream: string): string[] => [
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
  ],
  /** Deletes single messages (a replayed dead letter). */
  deleteMessages: (stream: string): string[] => [`$JS.API.STREAM.MSG.DELETE.${stream}`],
  /** Creates, reads, pulls from, acks on and deletes its consumers. */
  consume: (stream: string): string[] => [
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.ACK.${stream}.>`,
  ],
  /** A key-value bucket: its stream declared, read, watched, and its keys written. */
  bucket: (bucket: string): string[] => [
    ...jetStream.declare(`KV_${bucket}`),
    ...jetStream.read(`KV_${bucket}`),
    ...jetStream.consume(`KV_${bucket}`),
    `$KV.${bucket}.>`,
  ],
};

/** Every client asks the server whether JetStream is there when it connects. */
const JETSTREAM_INFO = '$JS.API.INFO';
/** Replies to the service's own requests (JetStream API calls, publish acks) arrive on its inboxes. */
const INBOXES = '_INBOX.>';

/**
 * The subjects each service needs in the namespace `ns`, and nothing more: a service cannot publish
 * where it has no business (the lock service cannot inject events, the cache cannot touch a stream).
 * Derived from the same contract functions the services build their subjects with.
 */
export function natsPermissions(ns: string): Record<ServiceName, SubjectPermissions> {
  const events = messagingNames(ns);
  const queue = queueNames(ns);
  const chat = chatNames(ns);
  const locks = lockSubjects(ns);
  const cache = cacheSubjects(ns);
  return {
    publisher: {
      publish: [
        JETSTREAM_INFO,
        events.eventsSubjects,
        ...jetStream.declare(events.eventsStream),
        ...jetStream.declare(events.deadLetterStream),
        `${ns}.queue.>`,
        ...jetStream.declare(queue.stream),
        ...jetStream.declare(queue.deadLetterStream),
        ...jetStream.read(queue.stream),
        ...jetStream.consume(queue.stream),
        ...jetStream.bucket(queue.leaseBucket),
      ],
      subscribe: [INBOXES],
      allowResponses: false,
    },
    aggregator: {
      publish: [
        JETSTREAM_INFO,
        // a replayed dead letter goes back to its partition
        events.eventsSubjects,
        events.deadLetterSubject,
        ...jetStream.declare(events.eventsStream),
        ...jetStream.declare(events.deadLetterStream),
        ...jetStream.consume(events.eventsStream),
        ...jetStream.read(events.deadLetterStream),
        ...jetStream.deleteMessages(events.deadLetterStream),
      ],
      subscribe: [INBOXES],
      allowResponses: false,
    },
    'chat-gateway': {
      publish: [
        JETSTREAM_INFO,
        `${ns}.chat.>`,
        ...jetStream.declare(chat.stream),
        ...jetStream.read(chat.stream),
        ...jetStream.consume(chat.stream),
        ...jetStream.bucket(chat.configBucket),
      ],
      subscribe: [INBOXES, `${ns}.chat.>`],
      allowResponses: true,
    },
    'lock-service': {
      publish: [JETSTREAM_INFO],
      subscribe: [INBOXES, locks.acquire, locks.release, locks.renew, locks.get, locks.list, locks.audit],
      allowResponses: true,
    },
    'cache-service': {
      publish: [JETSTREAM_INFO, cache.invalidations, `${ns}.cache.acks.*`],
      subscribe: [INBOXES, cache.invalidations, `${ns}.cache.acks.*`],
      allowResponses: true,
    },
  };
}

/** The environment variable holding a service's NATS password, e.g. `NATS_CHAT_GATEWAY_PASSWORD`. */
export function passwordVariable(user: string): string {
  return `NATS_${user.toUpperCase().replaceAll('-', '_')}_PASSWORD`;
}

const list = (subjects: string[]): string =>
  `[\n${subjects.map((s) => `          ${JSON.stringify(s)}`).join('\n')}\n        ]`;

/**
 * The nats-server configuration of a deployment: JetStream on file storage, monitoring, and one user
 * per service (plus `admin` for operators) whose password the server reads from its environment.
 */
export function renderNatsConfig(ns = 'toolkit'): string {
  const users = Object.entries(natsPermissions(ns)).map(
    ([user, p]) => `    {
      user: ${JSON.stringify(user)}
      password: $${passwordVariable(user)}
      permissions: {
        publish: { allow: ${list(p.publish)} }
        subscribe: { allow: ${list(p.subscribe)} }${p.allowResponses ? '\n        allow_responses: true' : ''}
      }
    }`,
  );
  return `# nats-server configuration of a deployment of the toolkit (namespace "${ns}").
# Generated by \`npm run deploy:render\` from scripts/deploy/nats-config.ts: edit that file, not this one.
#
# JetStream on file storage, monitoring on 8222, and one user per service allowed only the subjects it
# needs. Passwords are read from the server's environment (${passwordVariable('<service>')}, and
# ${passwordVariable('admin')} for operators): the server refuses to start when one is missing.

listen: "0.0.0.0:4222"
http: "0.0.0.0:8222"

# the store directory is given on the command line (-sd), next to where the deployment mounts its volume
jetstream: enabled

authorization {
  users: [
${users.join('\n')}
    {
      user: "admin"
      password: $${passwordVariable('admin')}
    }
  ]
}
`;
}
